#!/usr/bin/env node
// Makes Jazzer.js's prebuilt fuzzer (built against glibc 2.38 and GCC 13's libstdc++) load on
// older glibc, such as Debian 12's 2.36. It needs only three newer symbols:
//   __isoc23_strtol, __isoc23_strtoul (glibc 2.38's C23 names of strtol/strtoul) and
//   std::ios_base_library_init() (GCC 13's way of initialising iostreams).
// A small shim library defines them (compiled here with the system's g++) and is preloaded; the
// fuzzer's ELF file gets those symbols' version requirements removed and its requirements on
// GLIBC_2.38 and GLIBCXX_3.4.32 turned into ones every glibc/libstdc++ has. The file is patched
// in fuzz/node_modules only (a tool, never the project's code), once; prints the LD_PRELOAD value
// to use, or nothing when no patch is needed.
'use strict';
const { execFileSync } = require('node:child_process');
const { existsSync, readFileSync, writeFileSync, copyFileSync, mkdirSync } = require('node:fs');
const { join } = require('node:path');

const SYMBOLS = ['__isoc23_strtol', '__isoc23_strtoul', '_ZSt21ios_base_library_initv'];
const VERSIONS = [
  ['GLIBC_2.38', 'GLIBC_2.2.5'],
  ['GLIBCXX_3.4.32', 'GLIBCXX_3.4'],
];
const SHIM = `// Written by scripts/fuzz-compat.cjs.
#include <cstdlib>
#include <iostream>  // its static std::ios_base::Init readies the standard streams
extern "C" long __isoc23_strtol(const char *s, char **end, int base) { return std::strtol(s, end, base); }
extern "C" unsigned long __isoc23_strtoul(const char *s, char **end, int base) { return std::strtoul(s, end, base); }
namespace std { void ios_base_library_init() {} }
`;

function glibcVersion() {
  const report = process.report?.getReport();
  const v = report?.header?.glibcVersionRuntime;
  return v ? v.split('.').map(Number) : undefined;
}

/** The System V ELF hash of a version name (what vna_hash holds). */
function elfHash(name) {
  let h = 0;
  for (const c of Buffer.from(name)) {
    h = ((h << 4) + c) >>> 0;
    const g = h & 0xf0000000;
    if (g) h ^= g >>> 24;
    h = (h & ~g) >>> 0;
  }
  return h >>> 0;
}

/** Rewrites the version needs and symbol versions of an ELF64 little-endian shared object. */
function patchElf(buf) {
  if (buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2 || buf[5] !== 1) throw new Error('not an ELF64 little-endian file');
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  const sections = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    sections.push({ type: buf.readUInt32LE(o + 4), offset: Number(buf.readBigUInt64LE(o + 0x18)), size: Number(buf.readBigUInt64LE(o + 0x20)), link: buf.readUInt32LE(o + 0x28), entsize: Number(buf.readBigUInt64LE(o + 0x38)) });
  }
  const cstr = (table, o) => buf.toString('latin1', table + o, buf.indexOf(0, table + o));
  let changes = 0;
  // .gnu.version_r: needs on GLIBC_2.38 / GLIBCXX_3.4.32 become needs on versions every system has.
  for (const s of sections.filter((x) => x.type === 0x6ffffffe)) {
    const strtab = sections[s.link].offset;
    let vn = s.offset;
    for (;;) {
      const cnt = buf.readUInt16LE(vn + 2);
      let aux = vn + buf.readUInt32LE(vn + 8);
      const entries = [];
      for (let i = 0; i < cnt; i++) {
        entries.push({ at: aux, name: cstr(strtab, buf.readUInt32LE(aux + 8)), nameOffset: buf.readUInt32LE(aux + 8) });
        aux += buf.readUInt32LE(aux + 12);
      }
      for (const [newer, older] of VERSIONS) {
        const e = entries.find((x) => x.name === newer);
        const base = entries.find((x) => x.name === older);
        if (e && base) {
          buf.writeUInt32LE(elfHash(older), e.at);
          buf.writeUInt32LE(base.nameOffset, e.at + 8);
          changes++;
        }
      }
      const next = buf.readUInt32LE(vn + 12);
      if (next === 0) break;
      vn += next;
    }
  }
  // .gnu.version: the three symbols become unversioned, so the preloaded shim provides them.
  const dynsym = sections.find((x) => x.type === 11);
  const versym = sections.find((x) => x.type === 0x6fffffff);
  if (dynsym && versym) {
    const strtab = sections[dynsym.link].offset;
    for (let i = 0; i < dynsym.size / dynsym.entsize; i++) {
      const name = cstr(strtab, buf.readUInt32LE(dynsym.offset + i * dynsym.entsize));
      if (SYMBOLS.includes(name) && buf.readUInt16LE(versym.offset + 2 * i) > 1) {
        buf.writeUInt16LE(1, versym.offset + 2 * i);
        changes++;
      }
    }
  }
  return changes;
}

function main() {
  const root = join(__dirname, '..');
  const prebuilt = join(root, 'fuzz', 'node_modules', '@jazzer.js', 'fuzzer', 'prebuilds', `fuzzer-${process.platform}-${process.arch}.node`);
  const glibc = glibcVersion();
  if (process.platform !== 'linux' || !glibc || glibc[0] > 2 || (glibc[0] === 2 && glibc[1] >= 38) || !existsSync(prebuilt)) return;
  const dir = join(root, 'fuzz', '.build');
  mkdirSync(dir, { recursive: true });
  const shim = join(dir, 'libjazzer-compat.so');
  if (!existsSync(shim)) {
    writeFileSync(join(dir, 'jazzer-compat.cc'), SHIM);
    execFileSync('g++', ['-shared', '-fPIC', '-O2', '-o', shim, join(dir, 'jazzer-compat.cc')], { stdio: 'inherit' });
  }
  const original = `${prebuilt}.orig`;
  if (!existsSync(original)) {
    copyFileSync(prebuilt, original);
    const buf = readFileSync(original);
    const changes = patchElf(buf);
    writeFileSync(prebuilt, buf);
    process.stderr.write(`[fuzz] patched Jazzer.js's fuzzer for glibc ${glibc.join('.')} (${changes} entries)\n`);
  }
  process.stdout.write(shim);
}

if (require.main === module) main();
module.exports = { patchElf, elfHash };
