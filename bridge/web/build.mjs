// Bundles the browser clients: each src/pages/*.js becomes dist/<name>.js (an ES module, loaded by
// <script type="module" src=...>), with shared code in dist/chunks/ under content-hashed names.
// pages/*.html are written into dist/ with their partials filled in (the server serves them; they
// load /assets/<name>.js): a line `<!-- include NAME key="value" -->` stands for
// pages/partials/NAME, indented as the line, each {{key}} in it replaced by its value. So the
// staff pages' login and unlock markup, and every page's head, are written once.
// dist/manifest.json, written last, lists what was built: the Makefile uses it as its stamp.
//
//   node build.mjs                  build dist/ (minified)
//   node build.mjs --tests OUTDIR   bundle tests/browser/*.js and copy tests/browser/*.html into
//                                   OUTDIR, for the browser tests; dist/ is left alone
//
// No inline scripts and no eval: the pages run under a CSP of
// script-src 'self' 'wasm-unsafe-eval' ('wasm-unsafe-eval' lets libsodium compile its WebAssembly).

import { copyFile, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));

/** @type {esbuild.BuildOptions} */
const common = {
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2022"],
  charset: "utf8",
  legalComments: "eof",
  logLevel: "warning",
  metafile: true,
};

/** @param {string} dir @param {string} ext */
async function filesIn(dir, ext) {
  try {
    return (await readdir(dir))
      .filter((f) => f.endsWith(ext))
      .sort()
      .map((f) => join(dir, f));
  } catch (err) {
    if (/** @type {NodeJS.ErrnoException} */ (err).code === "ENOENT") return [];
    throw err;
  }
}

// A CSP without 'unsafe-eval' blocks these at run time; refuse them at build time instead.
const EVAL_PATTERNS = [/\beval\s*\(/, /\bnew\s+Function\s*\(/];

/** @param {esbuild.Metafile} metafile */
async function refuseEval(metafile) {
  for (const file of Object.keys(metafile.outputs).filter((f) => f.endsWith(".js"))) {
    const text = await readFile(file, "utf8");
    const hit = EVAL_PATTERNS.find((re) => re.test(text));
    if (hit) throw new Error(`${file} contains ${hit}: it would not run under the CSP`);
  }
}

const INCLUDE = /^([ \t]*)<!-- include ([\w.-]+)((?: \w+="[^"]*")*) -->$/gm;
const PARAM = /(\w+)="([^"]*)"/g;
const PLACEHOLDER = /\{\{(\w+)\}\}/g;

/** A page's HTML with its includes filled in; a missing partial or value fails the build.
 * @param {string} file */
async function renderPage(file) {
  const text = await readFile(file, "utf8");
  let out = "";
  let at = 0;
  for (const match of text.matchAll(INCLUDE)) {
    const [line, indent, name, params] = match;
    const values = Object.fromEntries([...params.matchAll(PARAM)].map(([, k, v]) => [k, v]));
    const partial = await readFile(join(here, "pages", "partials", name), "utf8");
    const filled = partial.replace(PLACEHOLDER, (_, key) => {
      if (!Object.hasOwn(values, key)) throw new Error(`${basename(file)}: ${name} needs ${key}=`);
      return values[key];
    });
    const lines = filled.trimEnd().split("\n");
    out += text.slice(at, match.index) + lines.map((l) => (l ? indent + l : l)).join("\n");
    at = /** @type {number} */ (match.index) + line.length;
  }
  out += text.slice(at);
  // What is left is malformed, or an include inside a partial: neither is filled in.
  if (out.includes("<!-- include")) {
    throw new Error(`${basename(file)}: an include was not filled in`);
  }
  return out;
}

async function buildDist() {
  const outdir = join(here, "dist");
  const entryPoints = await filesIn(join(here, "src", "pages"), ".js");
  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
  /** @type {Record<string, string>} */
  const pages = {};
  /** @type {string[]} */
  let files = [];
  if (entryPoints.length > 0) {
    const result = await esbuild.build({
      ...common,
      entryPoints,
      outdir,
      splitting: true,
      minify: true,
      entryNames: "[name]",
      chunkNames: "chunks/[name]-[hash]",
      assetNames: "assets/[name]-[hash]",
    });
    const metafile = /** @type {esbuild.Metafile} */ (result.metafile);
    await refuseEval(metafile);
    for (const [file, info] of Object.entries(metafile.outputs)) {
      const name = relative(outdir, resolve(file));
      files.push(name);
      if (info.entryPoint) pages[basename(info.entryPoint, ".js")] = name;
    }
    files = files.sort();
  }
  /** @type {string[]} */
  const html = [];
  for (const file of await filesIn(join(here, "pages"), ".html")) {
    await writeFile(join(outdir, basename(file)), await renderPage(file));
    html.push(basename(file));
  }
  const manifest = { pages, html, files };
  await writeFile(join(outdir, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(
    `built ${Object.keys(pages).length} page(s) into ${relative(process.cwd(), outdir) || "."}`,
  );
}

/** @param {string} outdir */
async function buildTests(outdir) {
  const testsDir = resolve(here, "..", "..", "tests", "browser");
  await mkdir(outdir, { recursive: true });
  const result = await esbuild.build({
    ...common,
    entryPoints: await filesIn(testsDir, ".js"),
    outdir,
    nodePaths: [join(here, "node_modules")], // the tests import libsodium too
    sourcemap: "linked",
  });
  await refuseEval(/** @type {esbuild.Metafile} */ (result.metafile));
  for (const html of await filesIn(testsDir, ".html")) {
    await copyFile(html, join(outdir, basename(html)));
  }
}

const args = process.argv.slice(2);
if (args[0] === "--tests" && args.length === 2) {
  await buildTests(resolve(args[1]));
} else if (args.length === 0) {
  await buildDist();
} else {
  console.error("usage: node build.mjs [--tests OUTDIR]");
  process.exit(2);
}
