// Validate one .glb/.gltf with the Khronos glTF validator; prints its JSON report on stdout.
// Usage: node validate_gltf.js FILE   (run by tests/test_exports.py with NODE_PATH at the installed package)
"use strict";
const fs = require("fs");
const path = require("path");
const validator = require("gltf-validator");

const file = process.argv[2];
const folder = path.dirname(file);
validator.validateBytes(new Uint8Array(fs.readFileSync(file)), {
  uri: path.basename(file),
  maxIssues: 100,
  externalResourceFunction: (uri) => new Promise((resolve, reject) => {
    fs.readFile(path.join(folder, decodeURIComponent(uri)), (err, data) => (err ? reject(err) : resolve(new Uint8Array(data))));
  }),
}).then((report) => {
  process.stdout.write(JSON.stringify(report));
}).catch((error) => {
  process.stderr.write(`validator failed: ${error}\n`);
  process.exit(1);
});
