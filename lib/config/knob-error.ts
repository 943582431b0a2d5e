/** Bad input for a knob: one line naming the source, the value and what is accepted (values.ts). */
export class KnobError extends Error {
  /** The CLI's exit code for bad input (DESIGN.md). */
  readonly exitCode = 2
  constructor (message: string) {
    super(message)
    this.name = 'KnobError'
  }
}
