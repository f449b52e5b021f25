/**
 * Fails when `deno task gen` would change anything under gen/: the committed
 * generated code must be exactly what the protos and pinned generators produce.
 *
 * @module
 */
async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, stderr: "inherit" }).output();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed (${out.code})`);
  return new TextDecoder().decode(out.stdout);
}

const root = new URL("..", import.meta.url).pathname;
await run(Deno.execPath(), ["task", "gen"], root);
// Against the index, so that staged generated code counts as committed.
const changed = await run("git", ["diff", "--stat", "--", "gen"], root) +
  await run("git", ["ls-files", "--others", "--exclude-standard", "--", "gen"], root);
if (changed.trim() !== "") {
  console.error(`gen/ differs from what \`deno task gen\` writes:\n${changed}`);
  Deno.exit(1);
}
console.log("gen/ is up to date");
