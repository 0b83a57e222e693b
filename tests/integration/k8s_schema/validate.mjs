// SPDX-License-Identifier: Apache-2.0
// Validates Kubernetes objects against the Kubernetes OpenAPI schema, with the validators that
// kubernetes-models generates from it (types, required fields, enums, formats).
//   node validate.mjs < objects.json     (a JSON array of objects)
// Prints one line per object, "ok KIND NAME" or "invalid KIND NAME: errors"; exits 1 if any is
// invalid or of a kind it does not know.
import { readFileSync } from "node:fs";

const objects = JSON.parse(readFileSync(0, "utf8"));
let bad = 0;
for (const obj of objects) {
	const what = `${obj.apiVersion} ${obj.kind} ${obj.metadata?.name ?? "?"}`;
	const group = obj.apiVersion.includes("/") ? obj.apiVersion : `v1`;
	let Model;
	try {
		Model = (await import(`kubernetes-models/${group}`))[obj.kind];
	} catch (e) {
		Model = undefined;
	}
	if (!Model) {
		console.log(`unknown ${what}: no schema for this kind`);
		bad++;
		continue;
	}
	try {
		new Model(obj).validate();
		console.log(`ok ${what}`);
	} catch (e) {
		console.log(`invalid ${what}: ${String(e.message).replace(/\n/g, "; ")}`);
		bad++;
	}
}
process.exit(bad ? 1 : 0);
