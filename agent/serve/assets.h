/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's own page: the files under dashboards/web/, embedded in the
 * binary at build time (scripts/embed_assets.sh writes them into
 * $(BUILD)/dashboard_assets.h), so the page works with no network and no
 * files beside the binary. "/" is index.html; every file is also served as
 * "/ui/<name>".
 */
#ifndef MESHTRACE_ASSETS_H
#define MESHTRACE_ASSETS_H

#include <stddef.h>

#include "agent/serve/httpd.h"

struct asset {
	const char *name; /* file name under dashboards/web/, e.g. "app.js" */
	const unsigned char *data;
	size_t len;
};

/* The embedded file called @name, or NULL. */
const struct asset *assets_find(const char *name);

/* The Content-Type for a file name, by its extension. */
const char *assets_content_type(const char *name);

/* Total bytes embedded (for the README's size claim and a test). */
size_t assets_total_bytes(void);

/* httpd handler for "/" and the prefix "/ui/"; @ctx unused. 404 for unknown names. */
int assets_serve(void *ctx, const char *path, const char *query, struct httpd_response *resp);

#endif /* MESHTRACE_ASSETS_H */
