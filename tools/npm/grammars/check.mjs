// Parse LogQL and TraceQL queries with Grafana's own grammars (the parsers of Grafana's query
// editors), and report every syntax error.
//
//   node check.mjs <install dir>  < queries.json  > results.json
//
// <install dir> is where `make tools` ran `npm ci` for this directory's package-lock.json (see
// tools/grammars.py). stdin: [{"language": "logql" | "traceql", "query": "..."}, ...]
// stdout: {"grammars": {package: version}, "results": [[error, ...], ...]}, one list per query,
// in order, empty when the query parses. An error is {from, to, line, column, text}: offsets in
// UTF-16 code units as lezer counts them, line and column from 1.
//
// Lezer recovers from a syntax error by inserting an error node (type id 0) and parsing on, so
// every error node is a syntax error; a tree that does not span the whole query, or whose top
// node is not the grammar's top rule, is reported as an error too.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const installDir = process.argv[2];
if (!installDir) {
  process.stderr.write('usage: node check.mjs <install dir> < queries.json\n');
  process.exit(2);
}
const require = createRequire(join(installDir, 'package.json'));
const PACKAGES = { logql: '@grafana/lezer-logql', traceql: '@grafana/lezer-traceql' };
const TOP = { logql: 'LogQL', traceql: 'TraceQL' };
const parsers = Object.fromEntries(
  Object.entries(PACKAGES).map(([language, name]) => [language, require(name).parser]),
);
const versions = Object.fromEntries(
  [...Object.values(PACKAGES), '@lezer/lr', '@lezer/common'].map((name) => {
    const manifest = join(installDir, 'node_modules', name, 'package.json');
    return [name, JSON.parse(readFileSync(manifest, 'utf8')).version];
  }),
);

function position(query, offset) {
  const before = query.slice(0, offset).split('\n');
  return { line: before.length, column: before[before.length - 1].length + 1 };
}

function errorAt(query, from, to) {
  return { from, to, ...position(query, from), text: query.slice(from, to) };
}

function check({ language, query }) {
  const parser = parsers[language];
  if (!parser) throw new Error(`unknown language ${JSON.stringify(language)}`);
  if (typeof query !== 'string') throw new Error(`query is not a string: ${JSON.stringify(query)}`);
  const tree = parser.parse(query);
  const errors = [];
  tree.iterate({
    enter(node) {
      if (node.type.isError) errors.push(errorAt(query, node.from, node.to));
    },
  });
  if (tree.type.name !== TOP[language] || tree.length !== query.length) {
    errors.push(errorAt(query, Math.min(tree.length, query.length), query.length));
  }
  return errors;
}

const queries = JSON.parse(readFileSync(0, 'utf8'));
const results = queries.map(check);
process.stdout.write(JSON.stringify({ grammars: versions, results }) + '\n');
