// grades' front-end build: bundles the sources into ../static/app.js.
const fs = require("fs");
const path = require("path");

const source = fs.readFileSync(path.join(__dirname, "src.js"), "utf8");
const out = path.join(__dirname, "..", "static", "app.js");
fs.writeFileSync(out, `/* built by node ${process.version} */\n${source}`);
console.log(`wrote ${out}`);
