/** `serve`: the web app over a data dir (web/app.ts), on 127.0.0.1 unless told otherwise. */
import { type Command, intOption, log, type ParsedValues, stringOption } from "./cli.ts";
import { fail } from "../core/errors.ts";
import { hasRecords } from "../store/paths.ts";
import { createApp } from "../web/app.ts";
import { DEFAULT_DATA_DIRS } from "../pipeline/predictor.ts";
import { generateToken, isLoopback } from "../web/security.ts";

export interface ServeSettings {
  dataDir: string;
  host: string;
  port: number;
  token?: string;
  /** Let Try it fetch image URLs on private and loopback addresses. */
  allowPrivate: boolean;
}

/** Without --data: the first of the default data dirs that has a manifest, as predict looks. */
async function firstDataDir(): Promise<string> {
  for (const dir of DEFAULT_DATA_DIRS) {
    if (await hasRecords(dir)) return dir;
  }
  return DEFAULT_DATA_DIRS[0]!;
}

/** Reads and checks the options; a non-loopback bind without a token is refused here. */
export async function serveSettings(values: ParsedValues): Promise<ServeSettings> {
  const dataDir = stringOption(values, "data") ?? await firstDataDir();
  const host = stringOption(values, "host", "127.0.0.1");
  const port = intOption(values, "port", 8080, { min: 0, max: 65535 });
  const token = stringOption(values, "token");
  const info = await Deno.stat(dataDir).catch(() => undefined);
  if (!info?.isDirectory) {
    fail(`no data dir at '${dataDir}': pass one with --data (deno task pipeline makes one)`, 2);
  }
  if (!await hasRecords(dataDir)) {
    fail(`'${dataDir}' has no records (state.db or index.csv): is it a data dir?`, 2);
  }
  if (!isLoopback(host) && token === undefined) {
    fail(
      `refusing to listen on ${host} without --token: anyone who can reach it would see faces ` +
        `and names and could delete them. Restart with, for example,\n  --token ${generateToken()}`,
      2,
    );
  }
  if (token !== undefined && token.length < 16) {
    fail(`--token must be at least 16 characters: got ${token.length}`, 2);
  }
  return { dataDir, host, port, token, allowPrivate: values["allow-private"] === true };
}

/**
 * The addresses a browser can open: the bound one, or for a wildcard bind (0.0.0.0, ::) this
 * machine's loopback and network addresses, since 0.0.0.0 itself opens nothing.
 */
export function addressesToOpen(hostname: string, port: number): string[] {
  const url = (host: string) => `http://${host.includes(":") ? `[${host}]` : host}:${port}/`;
  if (hostname !== "0.0.0.0" && hostname !== "::") return [url(hostname)];
  const own = Deno.networkInterfaces()
    .filter((i) => i.family === "IPv4" && !i.address.startsWith("127."))
    .map((i) => i.address);
  return [url("127.0.0.1"), ...[...new Set(own)].map(url)];
}

async function runServe(values: ParsedValues): Promise<number> {
  const settings = await serveSettings(values);
  const { app } = await createApp({
    dataDir: settings.dataDir,
    token: settings.token,
    allowPrivate: settings.allowPrivate,
    // Off this machine the browser may use any name for it; the token guards every request.
    allowedHosts: isLoopback(settings.host) ? undefined : "any",
  });
  const server = Deno.serve({
    hostname: settings.host,
    port: settings.port,
    onListen: ({ hostname, port }) => {
      const urls = addressesToOpen(hostname, port);
      log(`facefield serve: ${settings.dataDir} on ${urls[0]}`);
      for (const url of urls) {
        log(`open ${settings.token ? `${url}?token=${encodeURIComponent(settings.token)}` : url}`);
      }
      if (settings.token) log("the token is needed once per browser: a cookie keeps it");
      log("stop with Ctrl-C");
    },
  }, app.fetch);
  const stop = () => {
    server.shutdown();
    // An open live view (Server-Sent Events) never ends by itself: give requests a second.
    Deno.unrefTimer(setTimeout(() => Deno.exit(0), 1000));
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await server.finished;
  return 0;
}

export const serveCommand: Command = {
  name: "serve",
  summary:
    "look at a data dir in the browser: funnel, faces, report, try the model, remove a person",
  usage: `
usage: deno task serve [--data DIR] [--port 8080] [--host 127.0.0.1] [--token TOKEN]

Serves a local web app over the data dir: the per-source funnel and the split (live while a run
works on the data dir), the faces with their images, boxes, manifest rows and the models'
answers, the evaluation report with links to its faces, a Try-it page (the same prediction as
'deno task predict'), and removal of a person (the same as 'deno task forget').

  --data DIR       data dir (default: the first of ${DEFAULT_DATA_DIRS.join(", ")} that exists)
  --port N         port (default 8080; 0 picks a free one)
  --host ADDR      address to listen on (default 127.0.0.1, this machine only). Any other
                   address needs --token: every request must then carry it.
  --token TOKEN    access token (16 characters or more); the start message prints the
                   address that carries it (?token=TOKEN), needed once per browser
  --allow-private  let Try it fetch image URLs on private and loopback addresses (your own
                   network); without it a URL typed there may reach only public addresses
`,
  options: {
    data: { type: "string" },
    port: { type: "string" },
    host: { type: "string" },
    token: { type: "string" },
    "allow-private": { type: "boolean" },
  },
  run: runServe,
};
