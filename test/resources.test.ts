/**
 * readResources() against fixture cgroup trees: what a container really grants, not the host.
 */
import t from 'tap'
import os from 'node:os'
import { readResources } from '../lib/system/resources'
import { parseProcCgroup, parseCpuMax, parseMemoryLimit, ancestors } from '../lib/system/cgroup'

const GiB = 1024 ** 3
const HOST = { cpus: 8, memoryBytes: 16 * GiB }

/** `{ 'a/b/file': 'text' }` → the nested object t.testdir() builds (removed after the test). */
function tree (t: { testdir: (fixture: Record<string, any>) => string }, files: Record<string, string>): string {
  const root: Record<string, any> = {}
  for (const [file, text] of Object.entries(files)) {
    const parts = file.split('/')
    let dir = root
    for (const p of parts.slice(0, -1)) dir = dir[p] ??= {}
    dir[parts[parts.length - 1]] = text
  }
  return t.testdir(root)
}

const V2 = 'sys/fs/cgroup'

t.test('cgroup v2 without limits: the host figures, and the plan says so', async (t) => {
  const root = tree(t, {
    'proc/self/cgroup': '0::/\n',
    [`${V2}/cgroup.controllers`]: 'cpu memory pids\n',
    [`${V2}/cpu.max`]: 'max 100000\n',
    [`${V2}/memory.max`]: 'max\n'
  })
  const r = readResources({ root, host: HOST })
  t.equal(r.cpus, 8)
  t.equal(r.memoryMb, 16384)
  t.equal(r.source, 'host (cgroup v2: no limits set)')
  t.match(r.detail?.cpus, /no CPU quota/)
})

t.test('cgroup v2 quota of 2 CPUs and 512 MB inside a 8-CPU/16 GB host', async (t) => {
  const root = tree(t, {
    'proc/self/cgroup': '0::/kubepods/pod1/ctr\n',
    [`${V2}/cgroup.controllers`]: 'cpu memory\n',
    [`${V2}/kubepods/pod1/ctr/cpu.max`]: '200000 100000\n',
    [`${V2}/kubepods/pod1/ctr/memory.max`]: '536870912\n'
  })
  const r = readResources({ root, host: HOST })
  t.equal(r.cpus, 2)
  t.equal(r.memoryMb, 512)
  t.equal(r.source, 'cgroup v2 (cpu.max 200000/100000; memory.max 536870912)')
  t.match(r.detail?.cpus, '/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max')
  t.match(r.detail?.memory, 'host has 16384 MB')
})

t.test('fractional quotas stay fractional for display (0.5 and 1.5 CPUs)', async (t) => {
  for (const [max, cpus] of [['50000 100000', 0.5], ['150000 100000', 1.5]] as const) {
    const root = tree(t, {
      'proc/self/cgroup': '0::/\n',
      [`${V2}/cgroup.controllers`]: 'cpu\n',
      [`${V2}/cpu.max`]: max
    })
    t.equal(readResources({ root, host: HOST }).cpus, cpus, max)
  }
})

t.test('memory.high below memory.max is the budget (the kernel throttles above it)', async (t) => {
  const root = tree(t, {
    'proc/self/cgroup': '0::/app\n',
    [`${V2}/cgroup.controllers`]: 'memory\n',
    [`${V2}/app/memory.max`]: String(1 * GiB),
    [`${V2}/app/memory.high`]: String(768 * 1024 * 1024)
  })
  const r = readResources({ root, host: HOST })
  t.equal(r.memoryMb, 768)
  t.match(r.source, 'memory.high 805306368')
})

t.test('a limit on a parent cgroup binds the nested one', async (t) => {
  const root = tree(t, {
    'proc/self/cgroup': '0::/a/b/c\n',
    [`${V2}/cgroup.controllers`]: 'cpu memory\n',
    [`${V2}/a/memory.max`]: String(256 * 1024 * 1024),
    [`${V2}/a/b/memory.max`]: 'max',
    [`${V2}/a/b/cpu.max`]: '300000 100000',
    [`${V2}/a/b/c/cpu.max`]: 'max 100000',
    [`${V2}/a/b/c/memory.max`]: String(2 * GiB)
  })
  const r = readResources({ root, host: HOST })
  t.equal(r.cpus, 3)
  t.equal(r.memoryMb, 256)
  t.match(r.detail?.memory, '/sys/fs/cgroup/a/memory.max')
})

t.test('container without a cgroup namespace: the host path is missing, the mount root holds the limit', async (t) => {
  const root = tree(t, {
    'proc/self/cgroup': '0::/system.slice/docker-abc.scope\n',
    [`${V2}/cgroup.controllers`]: 'cpu memory\n',
    [`${V2}/cpu.max`]: '100000 100000',
    [`${V2}/memory.max`]: String(GiB)
  })
  const r = readResources({ root, host: HOST })
  t.equal(r.cpus, 1)
  t.equal(r.memoryMb, 1024)
})

t.test('cgroup v1 quota and memory limit', async (t) => {
  const root = tree(t, {
    'proc/self/cgroup': '5:memory:/docker/x\n3:cpu,cpuacct:/docker/x\n1:name=systemd:/docker/x\n',
    'sys/fs/cgroup/cpu,cpuacct/docker/x/cpu.cfs_quota_us': '150000\n',
    'sys/fs/cgroup/cpu,cpuacct/docker/x/cpu.cfs_period_us': '100000\n',
    'sys/fs/cgroup/memory/docker/x/memory.limit_in_bytes': String(GiB)
  })
  const r = readResources({ root, host: HOST })
  t.equal(r.cpus, 1.5)
  t.equal(r.memoryMb, 1024)
  t.equal(r.source, 'cgroup v1 (cpu.cfs_quota_us 150000/100000; memory.limit_in_bytes 1073741824)')
})

t.test('cgroup v1 "no limit" values (-1 and 9223372036854771712) mean the host', async (t) => {
  const root = tree(t, {
    'proc/self/cgroup': '4:memory:/\n1:cpu:/\n',
    'sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1\n',
    'sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n',
    'sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712\n'
  })
  const r = readResources({ root, host: HOST })
  t.equal(r.cpus, 8)
  t.equal(r.memoryMb, 16384)
  t.equal(r.source, 'host (cgroup v1: no limits set)')
})

t.test('hybrid hierarchy: v1 controllers from their mounts, the rest from the unified mount', async (t) => {
  const root = tree(t, {
    // like this project's CI machine: v1 memory/cpu lines plus an empty `0::/` line
    'proc/self/cgroup': '4:memory:/job/42\n0::/job/42\n',
    'sys/fs/cgroup/memory/job/42/memory.limit_in_bytes': String(512 * 1024 * 1024),
    'sys/fs/cgroup/unified/cgroup.controllers': 'cpu\n',
    'sys/fs/cgroup/unified/job/42/cpu.max': '400000 100000'
  })
  const r = readResources({ root, host: HOST })
  t.equal(r.memoryMb, 512)
  t.equal(r.cpus, 4)
  t.equal(r.source, 'cgroup v2+v1 (cpu.max 400000/100000; memory.limit_in_bytes 536870912)')
})

t.test('a limit above the host figures does not raise them', async (t) => {
  const root = tree(t, {
    'proc/self/cgroup': '0::/\n',
    [`${V2}/cgroup.controllers`]: 'cpu memory\n',
    [`${V2}/cpu.max`]: '1600000 100000',
    [`${V2}/memory.max`]: String(64 * GiB)
  })
  const r = readResources({ root, host: HOST })
  t.equal(r.cpus, 8)
  t.equal(r.memoryMb, 16384)
  t.match(r.detail?.memory, 'memory limit is above it')
})

t.test('no cgroup files at all: the host', async (t) => {
  const root = tree(t, { 'etc/hostname': 'x\n' })
  const r = readResources({ root, host: HOST })
  t.same({ cpus: r.cpus, memoryMb: r.memoryMb, source: r.source }, { cpus: 8, memoryMb: 16384, source: 'host' })
})

t.test('this machine: never more than the host has', async (t) => {
  const r = readResources()
  t.ok(r.cpus > 0 && r.cpus <= os.availableParallelism(), `cpus ${r.cpus}`)
  t.ok(r.memoryMb > 0 && r.memoryMb <= Math.floor(os.totalmem() / 1048576), `memoryMb ${r.memoryMb}`)
  t.type(r.source, 'string')
})

t.test('parsers', async (t) => {
  const m = parseProcCgroup('12:cpu,cpuacct:/a\n4:memory:/b\n0::/c\n')
  t.equal(m.v1.get('cpu'), '/a')
  t.equal(m.v1.get('cpuacct'), '/a')
  t.equal(m.v1.get('memory'), '/b')
  t.equal(m.v2Path, '/c')
  t.equal(parseCpuMax('max 100000'), undefined)
  t.same(parseCpuMax('50000 100000'), { quota: 50000, period: 100000 })
  t.equal(parseMemoryLimit('max'), undefined)
  t.equal(parseMemoryLimit('18446744073709551615'), undefined)
  t.equal(parseMemoryLimit('536870912\n'), 536870912)
  t.same(ancestors('/a/b'), ['/a/b', '/a', '/'])
  t.same(ancestors('/'), ['/'])
})
