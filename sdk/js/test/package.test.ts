// The package as it ships: the core's size, minified and gzipped, and the
// tarball of `npm pack` installed into a fresh project, imported from Node
// and type-checked from TypeScript.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { test } from "node:test";
import { build } from "esbuild";
import { tempDir } from "./harness.js";

const run = promisify(execFile);
const pkgRoot = resolve(fileURLToPath(import.meta.url), "../../..");

/** The size of entry's bundle, minified and gzipped (level 9), in bytes, with the packages external left out. */
async function gzipped(entry: string, external: string[] = []): Promise<number> {
  return (await bundled(entry, external)).size;
}

async function bundled(entry: string, external: string[] = []): Promise<{ size: number; js: string }> {
  const out = await build({
    stdin: { contents: entry, resolveDir: pkgRoot, loader: "ts", sourcefile: "entry.ts" },
    bundle: true,
    minify: true,
    format: "esm",
    target: "es2022",
    platform: "browser",
    external,
    write: false,
    logLevel: "silent",
  });
  const js = out.outputFiles[0]?.contents;
  assert.ok(js);
  return { size: gzipSync(js, { level: 9 }).length, js: new TextDecoder().decode(js) };
}

/** The engine entry points and the vendor SDK each runs on. */
const engines = [
  { entry: "livekit", engine: "LiveKitEngine", vendor: "livekit-client" },
  { entry: "agora", engine: "AgoraEngine", vendor: "agora-rtc-sdk-ng" },
  { entry: "zego", engine: "ZegoEngine", vendor: "zego-express-engine-webrtc" },
];

test("the core is at most 12 KB minified and gzipped", async (t) => {
  // What an app that imports the client ships (FakeEngine, for tests, is shaken out).
  const core = await gzipped(`export { Client } from "./src/index.ts";`);
  const all = await gzipped(`export * from "./src/index.ts";`);
  t.diagnostic(`core (Client): ${core} bytes; everything the main entry exports, FakeEngine included: ${all} bytes`);
  assert.ok(core <= 12 * 1024, `core is ${core} bytes, over 12 KB`);
  assert.ok(all > core, "the FakeEngine is shaken out of the core");
});

test("the engines are entry points of their own, out of the core", async (t) => {
  const core = await bundled(`export { Client } from "./src/index.ts";`, engines.map((e) => e.vendor));
  for (const e of engines) {
    assert.ok(!core.js.includes(e.vendor), `the core does not import ${e.vendor}`);
    const own = await gzipped(`export { ${e.engine} } from "./src/${e.entry}.ts";`, [e.vendor]);
    const whole = await gzipped(`export { ${e.engine} } from "./src/${e.entry}.ts";`);
    t.diagnostic(`${e.entry}: the engine ${own} bytes minified and gzipped (${e.vendor} left out); with ${e.vendor} bundled ${whole} bytes`);
    assert.ok(own < whole / 10, `${e.entry}: the engine is a small layer on ${e.vendor}`);
  }
});

test("npm pack makes a package that installs, imports and type-checks", async () => {
  const [dir, rm] = tempDir();
  try {
    const { stdout } = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], { cwd: pkgRoot });
    const info = (JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>)[0];
    assert.ok(info);
    const files = info.files.map((f) => f.path);
    for (const f of ["README.md", "LICENSE", "package.json", "dist/index.js", "dist/index.d.ts", "dist/client.d.ts", "dist/switchboard.min.js", "dist/livekit.js", "dist/livekit.d.ts", "dist/agora.js", "dist/agora.d.ts", "dist/zego.js", "dist/zego.d.ts"]) assert.ok(files.includes(f), `${f} in the package: ${files.join(", ")}`);
    assert.deepEqual(files.filter((f) => f.startsWith("src/") || f.startsWith("test/") || f.startsWith("build/") || f.includes("node_modules")), []);
    const pkg = JSON.parse(readFileSync(join(pkgRoot, "package.json"), "utf8")) as {
      dependencies?: object;
      peerDependenciesMeta?: Record<string, { optional?: boolean }>;
      exports: Record<string, unknown>;
    };
    assert.equal(pkg.dependencies, undefined, "no runtime dependencies");
    for (const e of engines) {
      assert.equal(pkg.peerDependenciesMeta?.[e.vendor]?.optional, true, `${e.vendor} is an optional peer dependency`);
      assert.deepEqual(pkg.exports[`./${e.entry}`], { types: `./dist/${e.entry}.d.ts`, import: `./dist/${e.entry}.js`, default: `./dist/${e.entry}.js` }, `the ${e.entry} entry point`);
    }

    // A fresh app installs the tarball and uses it.
    const app = join(dir, "app");
    mkdirSync(app);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", type: "module", private: true }));
    await run("npm", ["install", "--offline", "--no-audit", "--no-fund", join(dir, info.filename)], { cwd: app });
    // The app's vendor SDKs: the ones the tests pin, linked in (the registry is not asked).
    for (const e of engines) symlinkSync(join(pkgRoot, "node_modules", e.vendor), join(app, "node_modules", e.vendor), "dir");
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
    // An app with the three engines, typed through the vendor SDKs' declarations (whose own
    // errors, without their development dependencies, skipLibCheck skips, as apps do).
    mkdirSync(join(app, "engines"));
    writeFileSync(
      join(app, "engines", "main.ts"),
      `import { AgoraEngine, type AgoraConnection } from "@switchboardhq/client/agora";
       import { LiveKitEngine } from "@switchboardhq/client/livekit";
       import { ZegoEngine, type ZegoConnection } from "@switchboardhq/client/zego";
       import type { MediaEngine } from "@switchboardhq/client";
       export const engines: Record<string, MediaEngine> = {
         agora: new AgoraEngine({ joinTimeoutMs: 8000, onSubscribed: (user, kind) => { if (kind === "audio") user.audioTrack?.play(); } }),
         zegocloud: new ZegoEngine({ onStream: (id, stream, zg) => { zg.stopPlayingStream(id); void stream.id; } }),
         livekit: new LiveKitEngine(),
       };
       export function rtt(c: AgoraConnection | ZegoConnection): number | undefined { return c.quality()?.rttMs; }
       // @ts-expect-error: not an option of the engine
       new AgoraEngine({ joinTimeout: 1 });
       // @ts-expect-error: a uid is not a function (the vendor's types are there)
       new AgoraEngine({ onSubscribed: (user) => user.uid() });
       // @ts-expect-error: nor is a stream ID (the vendor's types are there)
       new ZegoEngine({ onStream: (id, _s, zg) => zg.startPlayingStream(id)() });
      `,
    );
    writeFileSync(
      join(app, "engines", "tsconfig.json"),
      JSON.stringify({ compilerOptions: { strict: true, target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", lib: ["ES2022", "DOM"], types: [], noEmit: true, skipLibCheck: true }, files: ["main.ts"] }),
    );
    await run(process.execPath, [join(pkgRoot, "node_modules/typescript/bin/tsc"), "-p", join(app, "engines")], { cwd: app }).catch((err: { stdout?: string }) => {
      throw new Error("type check of an app with the engines: " + (err.stdout ?? String(err)));
    });
    // A bundler finds each engine through the package's exports, with its vendor SDK.
    for (const e of engines) {
      const out = await build({
        stdin: { contents: `export { ${e.engine} } from "@switchboardhq/client/${e.entry}";`, resolveDir: app, sourcefile: "app.js" },
        bundle: true,
        format: "esm",
        platform: "browser",
        write: false,
        logLevel: "silent",
        metafile: true,
      });
      const inputs = Object.keys(out.metafile.inputs);
      assert.ok(inputs.some((i) => i.includes(`node_modules/@switchboardhq/client/dist/${e.entry}.js`)), `${e.entry}: ${inputs.slice(0, 5).join(", ")}`);
      assert.ok(inputs.some((i) => i.includes(`node_modules/${e.vendor}/`)), `${e.entry} bundles ${e.vendor}`);
    }
  } finally {
    rm();
  }
});
