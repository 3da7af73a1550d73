import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Host, type Task } from '@cgtx/core'
import { TaskList } from '../src/taskList.ts'
import { right } from './fixtures.ts'

const tasksOf = (count: number): Array<Task> => {
  const host = right(Host.create({ hierarchies: [{ name: 'h' }] }))
  return Array.from({ length: count }, () => host.spawn())
}

describe('TaskList', () => {
  it('keeps tasks in joining order like an insertion-ordered Set, under any sequence of adds and removes', () => {
    const pool = tasksOf(6)
    // Each task in at most one list, as in a css_set: two lists and a task moved between them.
    const op = fc.tuple(fc.constantFrom<'add' | 'delete' | 'move'>('add', 'delete', 'move'), fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 1 }))
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        for (const task of pool) for (const list of [task.cgList]) list?.delete(task)
        const lists = [new TaskList(), new TaskList()]
        const model = [new Set<Task>(), new Set<Task>()]
        for (const [kind, which, side] of ops) {
          const task = pool[which]!
          const home = model.findIndex((set) => set.has(task))
          if (kind === 'add' && home < 0) {
            lists[side]!.add(task)
            model[side]!.add(task)
          } else if (kind === 'delete') {
            expect(lists[side]!.delete(task)).toBe(model[side]!.delete(task))
          } else if (kind === 'move' && home >= 0) {
            lists[home]!.delete(task)
            model[home]!.delete(task)
            lists[1 - home]!.add(task)
            model[1 - home]!.add(task)
          }
          for (const i of [0, 1]) {
            expect([...lists[i]!]).toEqual([...model[i]!])
            expect(lists[i]!.size).toBe(model[i]!.size)
            for (const candidate of pool) expect(lists[i]!.has(candidate)).toBe(model[i]!.has(candidate))
          }
        }
      }),
    )
  })

  it('lets the task just yielded be removed while iterating, and refuses a task that is already in a list', () => {
    const [a, b, c] = tasksOf(3) as [Task, Task, Task]
    for (const task of [a, b, c]) task.cgList?.delete(task)
    const list = new TaskList()
    for (const task of [a, b, c]) list.add(task)
    const seen: Array<Task> = []
    for (const task of list) {
      seen.push(task)
      list.delete(task)
    }
    expect(seen).toEqual([a, b, c])
    expect(list.size).toBe(0)
    list.add(a)
    expect(() => new TaskList().add(a)).toThrow(/already in a css_set list/)
  })
})
