// The package as it ships: the core's size, minified and gzipped, and the
// tarball of `npm pack` installed into a fresh project, imported from Node
// and type-checked from TypeScript.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { test } from "node:test";
import { build } from "esbuild";
import { tempDir } from "./harness.js";

const run = promisify(execFile);
const pkgRoot = resolve(fileURLToPath(import.meta.url), "../../..");

/** The size of entry's bundle, minified and gzipped (level 9), in bytes. */
async function gzipped(entry: string): Promise<number> {
  const out = await build({
    stdin: { contents: entry, resolveDir: pkgRoot, loader: "ts", sourcefile: "entry.ts" },
    bundle: true,
    minify: true,
    format: "esm",
    target: "es2022",
    write: false,
    logLevel: "silent",
  });
  const js = out.outputFiles[0]?.contents;
  assert.ok(js);
  return gzipSync(js, { level: 9 }).length;
}

test("the core is at most 12 KB minified and gzipped", async (t) => {
  // What an app that imports the client ships (FakeEngine, for tests, is shaken out).
  const core = await gzipped(`export { Client } from "./src/index.ts";`);
  const all = await gzipped(`export * from "./src/index.ts";`);
  t.diagnostic(`core (Client): ${core} bytes; everything the main entry exports, FakeEngine included: ${all} bytes`);
  assert.ok(core <= 12 * 1024, `core is ${core} bytes, over 12 KB`);
  assert.ok(all > core, "the FakeEngine is shaken out of the core");
});

test("npm pack makes a package that installs, imports and type-checks", async () => {
  const [dir, rm] = tempDir();
  try {
    const { stdout } = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], { cwd: pkgRoot });
    const info = (JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>)[0];
    assert.ok(info);
    const files = info.files.map((f) => f.path);
    for (const f of ["README.md", "LICENSE", "package.json", "dist/index.js", "dist/index.d.ts", "dist/client.d.ts", "dist/switchboard.min.js", "dist/livekit.js", "dist/livekit.d.ts"]) assert.ok(files.includes(f), `${f} in the package: ${files.join(", ")}`);
    assert.deepEqual(files.filter((f) => f.startsWith("src/") || f.startsWith("test/") || f.startsWith("build/") || f.includes("node_modules")), []);
    const pkg = JSON.parse(readFileSync(join(pkgRoot, "package.json"), "utf8")) as {
      dependencies?: object;
      peerDependenciesMeta?: Record<string, { optional?: boolean }>;
      exports: Record<string, unknown>;
    };
    assert.equal(pkg.dependencies, undefined, "no runtime dependencies");
    assert.equal(pkg.peerDependenciesMeta?.["livekit-client"]?.optional, true, "livekit-client is an optional peer dependency");
    assert.ok(pkg.exports["./livekit"], "the livekit entry point");

    // A fresh app installs the tarball and uses it.
    const app = join(dir, "app");
    mkdirSync(app);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", type: "module", private: true }));
    await run("npm", ["install", "--offline", "--no-audit", "--no-fund", join(dir, info.filename)], { cwd: app });
    const { stdout: out } = await run(process.execPath, [
      "--input-type=module",
      "-e",
      `import { Client, FakeEngine, NoProviderError } from "@switchboardhq/client";
       const c = new Client({ serverUrl: "http://127.0.0.1:9", token: "t", engines: { http: new FakeEngine() } });
       await c.close();
       console.log(typeof Client, typeof NoProviderError, c.closed);`,
    ], { cwd: app });
    assert.equal(out.trim(), "function function true");
    writeFileSync(
      join(app, "main.ts"),
      `import { Client, FakeEngine, type StreamState } from "@switchboardhq/client";
       const engine = new FakeEngine();
       const client = new Client({ serverUrl: "https://sb.example", token: "t", engines: { agora: engine, http: engine } });
       export async function go(): Promise<string> {
         const stream = await client.start({ room: "r1", userId: "u1", role: "publisher", quality: "hd" });
         stream.on("state", (s: StreamState) => { if (s.type === "migrated") console.log(s.from, s.to, s.gapMs); });
         engine.fail("agora-main", "connection_lost");
         await stream.end();
         await client.close();
         return stream.provider;
       }
       // @ts-expect-error: not a state type
       const bad: StreamState["type"] = "exploded";
       void bad;
      `,
    );
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { strict: true, target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", lib: ["ES2022", "DOM"], types: [], noEmit: true }, files: ["main.ts"] }),
    );
    await run(process.execPath, [join(pkgRoot, "node_modules/typescript/bin/tsc"), "-p", app], { cwd: app }).catch((err: { stdout?: string }) => {
      throw new Error("type check of an app: " + (err.stdout ?? String(err)));
    });
  } finally {
    rm();
  }
});
