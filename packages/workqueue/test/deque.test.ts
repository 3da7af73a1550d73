import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Deque } from '../src/internal/deque.ts'

describe('Deque (the worklists)', () => {
  it('behaves as a FIFO array under any sequence of push, shift, remove and take, across ring growth', () => {
    const items = Array.from({ length: 100 }, (_, id) => ({ id }))
    const item = fc.integer({ min: 0, max: 99 })
    // Mostly pushes and shifts, so the ring wraps and grows with its head anywhere.
    const op = fc.oneof(
      { arbitrary: fc.record({ kind: fc.constant('push' as const), item }), weight: 6 },
      { arbitrary: fc.record({ kind: fc.constant('shift' as const) }), weight: 3 },
      { arbitrary: fc.record({ kind: fc.constant('remove' as const), item }), weight: 1 },
      { arbitrary: fc.record({ kind: fc.constant('take' as const), modulo: fc.integer({ min: 2, max: 5 }) }), weight: 1 },
    )
    fc.assert(
      fc.property(fc.array(op, { minLength: 20, maxLength: 300, size: 'max' }), (ops) => {
        const deque = new Deque<{ id: number }>()
        const model: Array<{ id: number }> = []
        for (const step of ops) {
          if (step.kind === 'push') {
            // An item is in a worklist at most once.
            const pushed = items[step.item]!
            if (model.includes(pushed)) continue
            deque.push(pushed)
            model.push(pushed)
          } else if (step.kind === 'shift') {
            expect(deque.shift()).toBe(model.shift())
          } else if (step.kind === 'remove') {
            const removed = items[step.item]!
            const at = model.indexOf(removed)
            expect(deque.remove(removed)).toBe(at >= 0)
            if (at >= 0) model.splice(at, 1)
          } else {
            const pick = (item: { id: number }): boolean => item.id % step.modulo === 0
            expect(deque.take(pick)).toEqual(model.filter(pick))
            model.splice(0, model.length, ...model.filter((item) => !pick(item)))
          }
          expect(deque.length).toBe(model.length)
          expect(deque.empty).toBe(model.length === 0)
          expect([...deque]).toEqual(model)
          expect(deque.peek()).toBe(model[0])
        }
      }),
      { numRuns: 300 },
    )
  })
})
