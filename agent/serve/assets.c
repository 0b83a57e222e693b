// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <string.h>

#include "agent/serve/assets.h"
#include "agent/common/util.h"

/* Generated: static const struct asset embedded_assets[] = {{"index.html", ...}, ...}; */
#include "dashboard_assets.h"

const struct asset *assets_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(embedded_assets); i++)
		if (!strcmp(embedded_assets[i].name, name))
			return &embedded_assets[i];
	return NULL;
}

const char *assets_content_type(const char *name)
{
	static const struct {
		const char *ext;
		const char *type;
	} types[] = {
		{".html", "text/html; charset=utf-8"},
		{".js", "text/javascript; charset=utf-8"},
		{".css", "text/css; charset=utf-8"},
		{".svg", "image/svg+xml"},
		{".png", "image/png"},
		{".json", "application/json"},
	};
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < ARRAY_SIZE(types); i++)
		if (!strcmp(dot, types[i].ext))
			return types[i].type;
	return "application/octet-stream";
}

size_t assets_total_bytes(void)
{
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(embedded_assets); i++)
		n += embedded_assets[i].len;
	return n;
}

int assets_serve(void *ctx, const char *path, const char *query, struct httpd_response *resp)
{
	const char *name = strcmp(path, "/") ? path : "/index.html";
	const struct asset *a;

	(void)ctx;
	(void)query;
	if (!strncmp(name, "/ui/", 4))
		name += 4;
	else if (*name == '/')
		name++;
	a = assets_find(name);
	if (!a) {
		resp->status = 404;
		return mt_buf_puts(&resp->body, "not found\n");
	}
	resp->content_type = assets_content_type(a->name);
	return mt_buf_append(&resp->body, a->data, a->len);
}
