// Prints one fact of an app's package.json for the nodejs buildpack's scripts:
//   node package.js start DIR          scripts.start (empty when none)
//   node package.js dependencies DIR   how many production dependencies it names
//   node package.js engine DIR         engines.node (empty when none)
// A missing package.json counts as an empty one; an unreadable one is an error.
"use strict";
const fs = require("fs");
const path = require("path");

const [what, dir] = process.argv.slice(2);
let p = {};
try {
  p = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
} catch (e) {
  if (e.code !== "ENOENT") {
    console.error(`package.json: ${e.message}`);
    process.exit(1);
  }
}
const facts = {
  start: () => (p.scripts && p.scripts.start) || "",
  dependencies: () => Object.keys(p.dependencies || {}).length,
  engine: () => (p.engines && p.engines.node) || "",
};
if (!facts[what]) {
  console.error(`package.js: unknown fact ${what}`);
  process.exit(2);
}
process.stdout.write(String(facts[what]()));
