/** The project's own checks run as tests, so a red `deno fmt`/`lint`/`check` fails CI. */

async function denoSubcommand(args: string[]): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args,
    env: { NO_COLOR: "1" },
  }).output();
  const decoder = new TextDecoder();
  return { code, output: decoder.decode(stdout) + decoder.decode(stderr) };
}

for (
  const [name, args] of [
    ["deno fmt --check is clean", ["fmt", "--check"]],
    ["deno lint is clean", ["lint"]],
    ["deno check passes on every module", ["check", "."]],
  ] as const
) {
  Deno.test(name, async () => {
    const { code, output } = await denoSubcommand([...args]);
    if (code !== 0) throw new Error(`deno ${args.join(" ")} failed:\n${output.slice(-4000)}`);
  });
}
