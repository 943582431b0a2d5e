/**
 * Private Redis topologies for the Sentinel / Cluster / TLS tests: real redis-server processes on
 * free ports in temp dirs (never the shared 6379), all killed by stop() and, as a safety net, at
 * process exit. No "skip when missing": a missing binary fails with a message saying what to install.
 *
 *   startCluster()       3 masters, `redis-cli --cluster create`, waits for cluster_state:ok
 *   startSentinelGroup() master + 1 replica + 3 sentinels (`redis-server <conf> --sentinel`)
 *   startTlsRedis()      a CA + server cert (IP:127.0.0.1) made with openssl, TLS-only redis-server
 *   startTlsCluster()    3 TLS-only masters (client and cluster-bus traffic encrypted), same CA
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import { answersPing, freePort, redisServerBinary, trackRedisProcess } from './redis-server'
import { setTimeout as sleep } from 'node:timers/promises'

export interface Address { host: string, port: number }


export { sleep }

function requireBinary (bin: string, versionArgs: string[], hint: string): void {
  const r = spawnSync(bin, versionArgs, { encoding: 'utf8' })
  if (r.error !== undefined || r.status !== 0) {
    throw new Error(`${bin} not found on PATH: ${hint}`)
  }
}

/** A tracked server process: started, waited for until `ready()` says yes, killable. */
export interface Proc {
  port: number
  kill (): Promise<void>
  alive (): boolean
}

async function launch (args: string[], port: number, ready: () => Promise<boolean>, what: string): Promise<Proc> {
  const bin = redisServerBinary()
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  trackRedisProcess(proc)
  let output = ''
  proc.stdout?.on('data', (d: Buffer) => { output = (output + d.toString()).slice(-4000) })
  proc.stderr?.on('data', (d: Buffer) => { output = (output + d.toString()).slice(-4000) })
  const kill = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill('SIGCONT')
    proc.kill('SIGKILL')
    await exited
  }
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`${what} exited at start (port ${port}): ${output.trim().slice(-600)}`)
    }
    if (await ready()) return { port, kill, alive: () => proc.exitCode === null && proc.signalCode === null }
    await sleep(25)
  }
  await kill()
  throw new Error(`${what} not ready on port ${port} within 10 s: ${output.trim().slice(-600)}`)
}

/** `redis-cli -p <port> <args…>` → stdout (throws with stderr on failure). */
export function cli (port: number, ...args: string[]): string {
  return cliWith([], port, ...args)
}

/** `redis-cli <options…> -p <port> <args…>`, e.g. options `--tls --cacert ca.crt`. */
function cliWith (options: string[], port: number, ...args: string[]): string {
  const r = spawnSync('redis-cli', [...options, '-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 10_000 })
  if (r.error !== undefined) throw new Error(`redis-cli failed: ${r.error.message}`)
  if (r.status !== 0) throw new Error(`redis-cli -p ${port} ${args.join(' ')} exited ${r.status}: ${r.stderr}${r.stdout}`)
  return r.stdout
}

function baseArgs (port: number, dir: string): string[] {
  return ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
    '--daemonize', 'no', '--loglevel', 'warning']
}

// ── Cluster ──────────────────────────────────────────────────────────────────────────────────────

export interface PrivateCluster {
  nodes: Address[]
  /** REDIS_CLUSTER_NODES form: `127.0.0.1:A,127.0.0.1:B,127.0.0.1:C`. */
  env: string
  stop (): Promise<void>
}

/**
 * Cluster mode for one node. Redis 7 `cluster-port`: the bus port is chosen too (the default
 * port+10000 may be > 65535 or taken for an ephemeral free port).
 */
function clusterNodeArgs (dir: string, port: number, bus: number): string[] {
  return ['--cluster-enabled', 'yes', '--cluster-config-file', path.join(dir, `nodes-${port}.conf`),
    '--cluster-port', String(bus), '--cluster-node-timeout', '2000']
}

/** `redis-cli --cluster create` over the nodes (no replicas), then wait for cluster_state:ok on each. */
async function formCluster (procs: Proc[], cliOptions: string[]): Promise<Address[]> {
  const nodes = procs.map((p) => ({ host: '127.0.0.1', port: p.port }))
  cliWith(cliOptions, nodes[0].port, '--cluster', 'create', ...nodes.map((n) => `${n.host}:${n.port}`), '--cluster-replicas', '0', '--cluster-yes')
  const deadline = Date.now() + 20_000
  for (;;) {
    const states = nodes.map((n) => /cluster_state:ok/.test(cliWith(cliOptions, n.port, 'cluster', 'info')))
    if (states.every(Boolean)) return nodes
    if (Date.now() > deadline) throw new Error('cluster_state:ok not reached on every node within 20 s')
    await sleep(100)
  }
}

/** A temp dir and the processes started in it, both gone after stop(). */
function clusterScaffold (prefix: string): { dir: string, procs: Proc[], stop: () => Promise<void> } {
  requireBinary('redis-cli', ['--version'], 'the Cluster tests need redis-cli (apt-get install redis-tools).')
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix))
  const procs: Proc[] = []
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map((p) => p.kill()))
    rmSync(dir, { recursive: true, force: true })
  }
  return { dir, procs, stop }
}

export async function startCluster (masters = 3): Promise<PrivateCluster> {
  const { dir, procs, stop } = clusterScaffold('prodserver-cluster-')
  try {
    for (let i = 0; i < masters; i++) {
      const port = await freePort()
      const bus = await freePort()
      procs.push(await launch([...baseArgs(port, dir), ...clusterNodeArgs(dir, port, bus)], port, () => answersPing(port), `redis-server (cluster node ${i + 1})`))
    }
    const nodes = await formCluster(procs, [])
    return { nodes, env: nodes.map((n) => `${n.host}:${n.port}`).join(','), stop }
  } catch (err) {
    await stop()
    throw err
  }
}

// ── Sentinel ─────────────────────────────────────────────────────────────────────────────────────

export interface PrivateSentinelGroup {
  name: string
  sentinels: Address[]
  /** REDIS_SENTINELS form. */
  env: string
  /** Port of the master as the sentinels see it now. */
  masterPort (): number
  /** The data nodes: [initial master, initial replica]. */
  data: Proc[]
  /** With `tls`: PEM of the CA that signed every node's and sentinel's certificate. */
  caFile?: string
  /** SIGKILL the current master (a crash). */
  killMaster (): Promise<number>
  stop (): Promise<void>
}

export interface SentinelGroupOptions {
  /** Everything TLS-only: data nodes, replication, the sentinels themselves (private CA: `caFile`). */
  tls?: boolean
}

export async function startSentinelGroup (name = 'mymaster', opts: SentinelGroupOptions = {}): Promise<PrivateSentinelGroup> {
  requireBinary('redis-cli', ['--version'], 'the Sentinel tests need redis-cli (apt-get install redis-tools).')
  const dir = mkdtempSync(path.join(os.tmpdir(), 'prodserver-sentinel-'))
  const procs: Proc[] = []
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map((p) => p.kill()))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    const certs = opts.tls === true ? makeCertificates(dir) : undefined
    const ca = certs === undefined ? undefined : readFileSync(certs.caFile)
    const cliOptions = certs === undefined ? [] : ['--tls', '--cacert', certs.caFile]
    const run = (port: number, ...args: string[]): string => cliWith(cliOptions, port, ...args)
    const answers = async (port: number): Promise<boolean> => ca === undefined ? await answersPing(port) : await tlsPing(port, ca)
    // Plain: --port P. TLS: no plain port, --tls-port P, and replication over TLS.
    const nodeArgs = (port: number): string[] => certs === undefined
      ? baseArgs(port, dir)
      : ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
          '--daemonize', 'no', '--loglevel', 'warning', ...certs.tlsArgs, '--tls-replication', 'yes']
    const launchNode = async (args: string[], port: number, what: string): Promise<Proc> => {
      try {
        return await launch(args, port, async () => await answers(port), what)
      } catch (err) {
        throw noTlsSupport(err) ?? err
      }
    }

    const mport = await freePort()
    const master = await launchNode(nodeArgs(mport), mport, 'redis-server (master)')
    procs.push(master)
    const rport = await freePort()
    const replica = await launchNode([...nodeArgs(rport), '--replicaof', '127.0.0.1', String(mport)], rport, 'redis-server (replica)')
    procs.push(replica)
    await waitFor(() => /master_link_status:up/.test(run(rport, 'info', 'replication')), 10_000, 'replica in sync')

    const sentinels: Address[] = []
    for (let i = 0; i < 3; i++) {
      const port = await freePort()
      const conf = path.join(dir, `sentinel-${port}.conf`)
      // The config file must be writable: a sentinel rewrites it with what it learns.
      const listen = certs === undefined
        ? [`port ${port}`]
        : ['port 0', `tls-port ${port}`, ...tlsDirectives(certs.tlsArgs), 'tls-replication yes']
      writeFileSync(conf, [
        ...listen, 'bind 127.0.0.1', `dir ${dir}`, 'daemonize no', 'loglevel warning',
        `sentinel monitor ${name} 127.0.0.1 ${mport} 2`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 5000`,
        `sentinel parallel-syncs ${name} 1`, ''
      ].join('\n'))
      // `redis-server <conf> --sentinel` (no separate redis-sentinel binary needed).
      procs.push(await launchNode([conf, '--sentinel'], port, 'redis sentinel'))
      sentinels.push({ host: '127.0.0.1', port })
    }
    // Usable only once the sentinels found each other (hello messages every 2 s) and the replica.
    await waitFor(() => sentinels.every((s) => /OK 3 usable/.test(run(s.port, 'sentinel', 'ckquorum', name)) &&
      run(s.port, 'sentinel', 'replicas', name).includes(String(rport))), 20_000, 'sentinels see 3 sentinels and the replica')

    const masterPort = (): number => Number(run(sentinels[0].port, 'sentinel', 'get-master-addr-by-name', name).trim().split('\n')[1])
    return {
      name,
      sentinels,
      env: sentinels.map((s) => `${s.host}:${s.port}`).join(','),
      caFile: certs?.caFile,
      masterPort,
      data: [master, replica],
      killMaster: async () => {
        const port = masterPort()
        const p = procs.find((x) => x.port === port)
        if (p === undefined) throw new Error(`no process for master port ${port}`)
        await p.kill()
        return port
      },
      stop
    }
  } catch (err) {
    await stop()
    throw err
  }
}

/** `--tls-cert-file X …` command-line pairs → `tls-cert-file X` config-file lines. */
function tlsDirectives (args: string[]): string[] {
  const lines: string[] = []
  for (let i = 0; i + 1 < args.length; i += 2) lines.push(`${args[i].replace(/^--/, '')} ${args[i + 1]}`)
  return lines
}

export async function waitFor (cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      if (await cond()) return
    } catch {}
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for: ${what}`)
    await sleep(100)
  }
}

// ── TLS ──────────────────────────────────────────────────────────────────────────────────────────

export interface PrivateTlsRedis {
  tlsPort: number
  url: string
  /** PEM of the CA that signed the server certificate. */
  caFile: string
  dir: string
  stop (): Promise<void>
}

function openssl (dir: string, args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8', timeout: 30_000 })
  if (r.error !== undefined) throw new Error(`openssl not found on PATH: the TLS test needs it (apt-get install openssl): ${r.error.message}`)
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} exited ${r.status}: ${r.stderr}`)
}

/**
 * A CA and a certificate it signed for IP:127.0.0.1 in `dir` (ca.crt, server.crt, server.key). The
 * certificate is good for clients too: Cluster nodes present it to each other on the cluster bus.
 */
function makeCertificates (dir: string): { caFile: string, tlsArgs: string[] } {
  openssl(dir, ['req', '-x509', '-new', '-nodes', '-newkey', 'rsa:2048', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=prodserver test CA'])
  openssl(dir, ['req', '-new', '-nodes', '-newkey', 'rsa:2048', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'])
  writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n')
  openssl(dir, ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'ext.cnf'])
  const caFile = path.join(dir, 'ca.crt')
  return {
    caFile,
    tlsArgs: ['--tls-cert-file', path.join(dir, 'server.crt'), '--tls-key-file', path.join(dir, 'server.key'), '--tls-ca-cert-file', caFile, '--tls-auth-clients', 'no']
  }
}

function noTlsSupport (err: unknown): Error | undefined {
  return /tls-port|Bad directive|unknown/i.test(String(err))
    ? new Error(`this redis-server has no TLS support (${String(err).slice(0, 200)}); install a build with TLS (Debian/Ubuntu redis-server 6+ has it)`)
    : undefined
}

export async function startTlsRedis (): Promise<PrivateTlsRedis> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'prodserver-tls-'))
  try {
    const { caFile, tlsArgs } = makeCertificates(dir)
    const ca = readFileSync(caFile)
    let proc: Proc | undefined
    let lastErr: unknown
    for (let attempt = 0; attempt < 5 && proc === undefined; attempt++) {
      const port = await freePort()
      try {
        proc = await launch([
          '--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
          '--daemonize', 'no', '--loglevel', 'warning', ...tlsArgs
        ], port, () => tlsPing(port, ca), 'redis-server (TLS)')
      } catch (err) {
        lastErr = err
        const unsupported = noTlsSupport(err)
        if (unsupported !== undefined) throw unsupported
      }
    }
    if (proc === undefined) throw lastErr
    const p = proc
    return {
      tlsPort: p.port,
      url: `rediss://127.0.0.1:${p.port}`,
      caFile,
      dir,
      stop: async () => {
        await p.kill()
        rmSync(dir, { recursive: true, force: true })
      }
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
}

export interface PrivateTlsCluster {
  nodes: Address[]
  /** REDIS_CLUSTER_NODES form. */
  env: string
  /** PEM of the CA that signed the nodes' certificate. */
  caFile: string
  stop (): Promise<void>
}

export async function startTlsCluster (masters = 3): Promise<PrivateTlsCluster> {
  const { dir, procs, stop } = clusterScaffold('prodserver-tls-cluster-')
  try {
    const { caFile, tlsArgs } = makeCertificates(dir)
    const ca = readFileSync(caFile)
    for (let i = 0; i < masters; i++) {
      const port = await freePort()
      const bus = await freePort()
      try {
        // TLS only (--port 0), the cluster bus encrypted too (--tls-cluster yes).
        procs.push(await launch([
          '--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
          '--daemonize', 'no', '--loglevel', 'warning', ...tlsArgs, '--tls-cluster', 'yes', ...clusterNodeArgs(dir, port, bus)
        ], port, () => tlsPing(port, ca), `redis-server (TLS cluster node ${i + 1})`))
      } catch (err) {
        throw noTlsSupport(err) ?? err
      }
    }
    const nodes = await formCluster(procs, ['--tls', '--cacert', caFile])
    return { nodes, env: nodes.map((n) => `${n.host}:${n.port}`).join(','), caFile, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/** `DBSIZE` of one TLS node (keys it holds). */
export function tlsDbsize (port: number, caFile: string): number {
  return Number(cliWith(['--tls', '--cacert', caFile], port, 'dbsize').trim())
}

/** connect() expected to fail: the error and how long it took. */
export async function failedConnect (store: { connect (ms: number): Promise<void> }, bootTimeoutMs: number): Promise<{ err: Error | undefined, ms: number }> {
  const started = performance.now()
  const err = await store.connect(bootTimeoutMs).then(() => undefined, (e: Error) => e)
  return { err, ms: performance.now() - started }
}

/** PING over TLS, verifying the server certificate against `ca`. */
export async function tlsPing (port: number, ca: Buffer, timeoutMs = 1000): Promise<boolean> {
  return await new Promise((resolve) => {
    const sock = tls.connect({ host: '127.0.0.1', port, ca })
    const done = (ok: boolean): void => { clearTimeout(timer); sock.destroy(); resolve(ok) }
    const timer = setTimeout(() => done(false), timeoutMs)
    sock.on('error', () => done(false))
    sock.on('secureConnect', () => sock.write('PING\r\n'))
    let buf = ''
    sock.on('data', (d: Buffer) => { buf += d.toString(); if (buf.includes('+PONG')) done(true) })
  })
}
