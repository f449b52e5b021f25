/**
 * `deno doc --lint` on the entry points, minus one known false positive: Deno 2.9
 * reports types imported from npm packages (DescService, ServiceImpl, …) as
 * "private-type-ref", because with `nodeModulesDir` they resolve to local files
 * (denoland/deno#27364). Every other diagnostic fails the run.
 *
 * @module
 */
const entryPoints = ["mod.ts", "host.ts", "guest.ts", "cli.ts", "ping.ts"];

const out = await new Deno.Command(Deno.execPath(), {
  args: ["doc", "--lint", ...entryPoints],
  env: { NO_COLOR: "1" },
  stdout: "piped",
  stderr: "piped",
}).output();
const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
const diagnostics = text.split(/\n(?=error\[)/).filter((block) => block.startsWith("error["));

// The npm types our public API is written in; a missing JSDoc or a private type of
// our own is never excused.
const npmTypeNames = new Set([
  "DescService",
  "DescMethod",
  "ServiceImpl",
  "GenService",
  "GenMessage",
  "GenFile",
  "Message",
  "Client",
  "Transport",
]);

/** Whether a diagnostic is the npm false positive. */
function isNpmTypeRef(block: string): boolean {
  const name = /^error\[private-type-ref\].*references private type '(\w+)'/.exec(block)?.[1];
  return name !== undefined && npmTypeNames.has(name);
}

const remaining = diagnostics.filter((block) => !isNpmTypeRef(block));
if (remaining.length > 0) {
  console.error(remaining.join("\n"));
  console.error(`${remaining.length} documentation lint error(s)`);
  Deno.exit(1);
}
console.log(`doc lint clean (${diagnostics.length} npm type reference(s) not counted)`);
