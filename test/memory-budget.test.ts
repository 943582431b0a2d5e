/**
 * The pure parts of the memory budget: when a worker counts as over budget and when it is
 * replaced, what an exit says about memory, the p95 figures and the budget advice.
 */
import t from 'tap'
import { FRESH_STATE, exitCause, judgeSample, type BudgetState, type MemoryPlan, type MemorySample, type Verdict } from '../lib/cluster/memory-budget'
import { MbHistogram, adviseBudget } from '../lib/plan/memory-advice'
import { maxOldSpaceFlag, oldSpaceLimitMb, parseVmRssMb } from '../lib/system/process-memory'

const plan: MemoryPlan = { budgetMb: 200, threshold: 0.85, samples: 3, intervalMs: 2000 }

/** Feeds samples in order; returns the action after each. */
function run (samples: MemorySample[], p: MemoryPlan = plan): Array<Verdict['action']> {
  let state: BudgetState = FRESH_STATE
  return samples.map((sample) => {
    const out = judgeSample(state, sample, p)
    state = out.state
    return out.verdict.action
  })
}

const rss = (rssMb: number): MemorySample => ({ rssMb })
const heap = (heapUsedMb: number, heapLimitMb = 150): MemorySample => ({ rssMb: 90, heapUsedMb, heapLimitMb })

t.test('replace after `samples` consecutive samples over the threshold, once per episode', async (t) => {
  const cases: Array<[string, MemorySample[], Array<Verdict['action']>, MemoryPlan?]> = [
    ['under budget: nothing', [rss(100), rss(160), rss(169)], ['none', 'none', 'none']],
    ['RSS over 0.85 × 200 = 170 for 3 samples', [rss(100), rss(171), rss(180), rss(190)], ['none', 'none', 'none', 'replace']],
    ['a dip resets the count', [rss(100), rss(171), rss(172), rss(150), rss(171), rss(172), rss(173)], ['none', 'none', 'none', 'none', 'none', 'none', 'replace']],
    ['one request per episode while it stays over', [rss(100), rss(171), rss(172), rss(173), rss(174), rss(175)], ['none', 'none', 'none', 'replace', 'none', 'none']],
    ['a new episode after going under', [rss(100), rss(171), rss(172), rss(173), rss(100), rss(171), rss(172), rss(173)], ['none', 'none', 'none', 'replace', 'none', 'none', 'none', 'replace']],
    ['heap over 0.85 × its 150 MB cap = 127.5, RSS fine', [heap(10), heap(128), heap(130), heap(140)], ['none', 'none', 'none', 'replace']],
    ['heap at the threshold is not over', [heap(10), heap(127.5), heap(127.5), heap(127.5)], ['none', 'none', 'none', 'none']],
    ['over since the first sample: budget too small, said once', [rss(180), rss(180), rss(180), rss(181)], ['none', 'none', 'too-small', 'none']],
    ['samples = 1: the first sample over decides', [rss(100), rss(171)], ['none', 'replace'], { ...plan, samples: 1 }],
    ['threshold 0: observe only', [rss(100), rss(1000), rss(1000), rss(1000)], ['none', 'none', 'none', 'none'], { ...plan, threshold: 0 }],
    ['no figures at all is not "under"', [{}, rss(171), rss(172), rss(173)], ['none', 'none', 'none', 'too-small']]
  ]
  for (const [name, samples, expected, p] of cases) t.same(run(samples, p), expected, name)
})

t.test('the reason names the measure, the threshold and the count', async (t) => {
  let state = judgeSample(FRESH_STATE, rss(100), plan).state
  state = judgeSample(state, heap(130), plan).state
  state = judgeSample(state, heap(131), plan).state
  const out = judgeSample(state, heap(132), plan)
  t.same(out.verdict, { action: 'replace', reason: 'heap 132 MB > 128 MB (0.85 × heap cap 150 MB) for 3 samples in a row' })
  const rssOut = run([rss(100), rss(171), rss(171)], { ...plan, samples: 2 })
  t.same(rssOut, ['none', 'none', 'replace'])
  let s2 = judgeSample(FRESH_STATE, rss(50), { ...plan, samples: 1 }).state
  const one = judgeSample(s2, rss(171), { ...plan, samples: 1 })
  t.same(one.verdict, { action: 'replace', reason: 'RSS 171 MB > 170 MB (0.85 × worker-memory-mb 200) for 1 sample in a row' })
  s2 = one.state
  t.equal(s2.over, 1)
})

t.test('what an exit says about memory', async (t) => {
  const base = { killedByUs: false, budgetMb: 200 }
  const cases: Array<[string, Parameters<typeof exitCause>[0], ReturnType<typeof exitCause>]> = [
    ['SIGABRT with the heap near its cap: out of memory', { ...base, signal: 'SIGABRT', heap: { usedMb: 140.4, limitMb: 150 } },
      { memory: true, text: 'out of memory (heap limit 150 MB; last sample 140 MB)' }],
    ['SIGABRT at exactly half the cap still counts', { ...base, signal: 'SIGABRT', heap: { usedMb: 75, limitMb: 150 } },
      { memory: true, text: 'out of memory (heap limit 150 MB; last sample 75 MB)' }],
    ['SIGABRT with a small heap: said, not claimed', { ...base, signal: 'SIGABRT', heap: { usedMb: 20, limitMb: 150 } },
      { memory: false, text: 'aborted (SIGABRT): V8 aborts like this at its heap limit; the last heap sample was 20 of 150 MB' }],
    ['SIGABRT before any sample', { ...base, signal: 'SIGABRT' },
      { memory: false, text: 'aborted (SIGABRT): V8 aborts like this at its heap limit; no heap sample yet' }],
    ['SIGKILL from outside: the OOM killer, with the last RSS', { ...base, signal: 'SIGKILL', rssMb: 512.2 },
      { memory: false, text: "killed by SIGKILL: perhaps out of memory (the kernel's or the cgroup's OOM killer); last RSS 512 MB of a 200 MB budget" }],
    ['SIGKILL without a sample', { ...base, signal: 'SIGKILL' },
      { memory: false, text: "killed by SIGKILL: perhaps out of memory (the kernel's or the cgroup's OOM killer)" }],
    ['SIGKILL by worker-timeout: not memory', { ...base, signal: 'SIGKILL', killedByUs: true, rssMb: 80 }, undefined],
    ['an exit code: not memory', { ...base, signal: null, heap: { usedMb: 149, limitMb: 150 } }, undefined]
  ]
  for (const [name, facts, expected] of cases) t.same(exitCause(facts), expected, name)
})

t.test('p95 over whole-MB buckets', async (t) => {
  const h = new MbHistogram()
  t.equal(h.quantile(0.95), undefined, 'no samples, no figure')
  for (let i = 1; i <= 100; i++) h.add(i - 0.5)
  t.equal(h.count, 100)
  t.equal(h.quantile(0.95), 95)
  t.equal(h.quantile(0.5), 50)
  t.equal(h.quantile(1), 100)
  const one = new MbHistogram()
  one.add(61.2)
  t.equal(one.quantile(0.95), 62, 'rounded up: never under what was seen')
})

t.test('the budget advice: p95 at 80% of the replacement threshold, workers from the seed formula', async (t) => {
  const machine = { cpus: 2, memoryMb: 1024, workerMemoryMb: 200, threshold: 0.85 }
  const a = adviseBudget({ ...machine, samples: 120, p95RssMb: 70, p95HeapMb: 25 })
  // 70 / (0.85 × 0.8) = 102.9 → 110 MB; heap 25 / 0.68 / 0.75 = 49 → RSS decides.
  t.equal(a?.workerMemoryMb, 110)
  // cpu_based = 5, ram_based = floor(1024 / 110) = 9 → 5 (CPU-limited).
  t.equal(a?.workers, 5)
  t.equal(a?.limitedBy, 'cpu')
  t.equal(a?.text, 'workers use p95 RSS 70 MB, p95 heap 25 MB (120 samples); with WORKER_MEMORY_MB=110 this machine would run 5 workers (CPU-limited; now WORKER_MEMORY_MB=200)')

  const heapBound = adviseBudget({ ...machine, samples: 10, p95RssMb: 150, p95HeapMb: 120 })
  // heap: 120 / 0.68 / 0.75 = 235.3 → 240; RSS: 150 / 0.68 = 220.6 → 230: the heap decides.
  t.equal(heapBound?.workerMemoryMb, 240)
  t.equal(heapBound?.workers, 4, 'floor(1024 / 240) = 4 (RAM-limited)')
  t.equal(heapBound?.limitedBy, 'ram')

  t.equal(adviseBudget({ ...machine, samples: 5, p95RssMb: 10 })?.workerMemoryMb, 32, 'never below the knob minimum')
  t.equal(adviseBudget({ ...machine, threshold: 0, samples: 5, p95RssMb: 80 })?.workerMemoryMb, 100, 'observe only: 80 / 0.8')
  t.equal(adviseBudget({ ...machine, samples: 0 }), undefined, 'nothing measured, no advice')
  t.equal(adviseBudget({ ...machine, samples: 10, p95RssMb: 70, threads: 4 })?.workers, 1, 'an explicit threads knob divides the count, as in the plan')
})

t.test('RSS from /proc/<pid>/status, heap cap from the flags', async (t) => {
  t.equal(parseVmRssMb('Name:\tnode\nVmRSS:\t  102400 kB\nVmData:\t1 kB\n'), 100)
  t.equal(parseVmRssMb('Name:\tkthreadd\n'), undefined, 'kernel threads have no VmRSS')
  t.equal(maxOldSpaceFlag(['--max-old-space-size=150']), 150)
  t.equal(maxOldSpaceFlag(['--max_old_space_size', '300']), 300)
  t.equal(maxOldSpaceFlag(['--max-old-space-size=64', '--inspect', '--max-old-space-size=96']), 96, 'the last one wins, as in V8')
  t.equal(maxOldSpaceFlag(['--max-semi-space-size=16']), undefined)
  t.equal(oldSpaceLimitMb(['--max-old-space-size=150'], ''), 150)
  t.equal(oldSpaceLimitMb([], '--max-old-space-size=256 --enable-source-maps'), 256, 'NODE_OPTIONS')
  t.ok(oldSpaceLimitMb([], '') > 0, "without a flag: V8's own limit")
})
