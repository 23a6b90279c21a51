// Headless Chromium for the engines' browser tests: a fixture page
// (test/fixtures/*.ts) bundled with esbuild and served from loopback runs the
// engine on the real vendor package and posts its outcomes back as JSON.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { tempDir } from "./harness.js";

const pkgRoot = resolve(fileURLToPath(import.meta.url), "../../..");

/** Debian's Chromium (or another found in the usual places); undefined when none is. */
export const chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].find((p) => existsSync(p));

/** Listens on a free loopback port and answers it. */
export async function listen(s: Server): Promise<number> {
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return (s.address() as AddressInfo).port;
}

/** Closes s and every connection to it. */
export async function stop(s: Server): Promise<void> {
  s.closeAllConnections();
  await new Promise((r) => s.close(r));
}

export interface FixtureRun {
  /** The fixture's file name under test/fixtures. */
  fixture: string;
  /** Appended to the page's URL, with its "?" (e.g. "?port=1"); none by default. */
  query?: string;
  /** Chromium flags beyond the headless ones every run has. */
  args?: string[];
  /** How long the page may take; past it the run fails with hangMessage. */
  limitMs: number;
  hangMessage: string;
}

/** Runs a fixture page in headless Chromium and resolves with the body it posted to /result. */
export async function runFixture(run: FixtureRun): Promise<string> {
  const bundle = await build({
    entryPoints: [resolve(pkgRoot, "test/fixtures", run.fixture)],
    bundle: true,
    format: "esm",
    target: "es2022",
    platform: "browser",
    write: false,
    logLevel: "silent",
  });
  const js = bundle.outputFiles[0]?.text ?? "";
  let resolveResult: (v: string) => void = () => undefined;
  const result = new Promise<string>((r) => (resolveResult = r));
  const page = createServer((req, res) => {
    if (req.url?.startsWith("/page.js")) {
      res.writeHead(200, { "Content-Type": "text/javascript" });
      res.end(js);
    } else if (req.url === "/result" && req.method === "POST") {
      let body = "";
      req.setEncoding("utf8").on("data", (c: string) => (body += c));
      req.on("end", () => {
        res.end();
        resolveResult(body);
      });
    } else {
      res.writeHead(200, { "Content-Type": "text/html" });
      res.end(`<!doctype html><title>${run.fixture}</title><script type="module" src="/page.js"></script>`);
    }
  });
  const pagePort = await listen(page);
  const [dir, rm] = tempDir();
  const browser = spawn(
    chromium ?? "chromium",
    [
      "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
      "--disable-background-networking", "--disable-component-update", "--disable-sync", `--user-data-dir=${dir}`,
      ...(run.args ?? []),
      `http://127.0.0.1:${pagePort}/${run.query ?? ""}`,
    ],
    { stdio: "ignore", detached: true },
  );
  try {
    // The limit only ends a test that would otherwise hang.
    const limit = new Promise<string>((_, rej) => setTimeout(() => rej(new Error(run.hangMessage)), run.limitMs).unref());
    return await Promise.race([result, limit]);
  } finally {
    if (browser.pid) {
      try {
        process.kill(-browser.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await stop(page);
    rm();
  }
}
