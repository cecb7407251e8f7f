// The "build" of this site: writes dist/index.html from a template.
const fs = require("fs");

const VERSION = "v1";
fs.mkdirSync("dist", { recursive: true });
fs.writeFileSync(
  "dist/index.html",
  `<!doctype html>\n<title>static-hello</title>\n<p>hello from static-hello ${VERSION}</p>\n`,
);
console.log("wrote dist/index.html");
