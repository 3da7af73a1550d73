/**
 * The tasks of one css_set in the order they joined it, linked through the
 * tasks themselves like the kernel's `css_set->tasks` and `task->cg_list`:
 * adding and removing touch two neighbours and allocate nothing, where a
 * `Set` that tasks keep joining and leaving rehashes its table.
 *
 * @module taskList
 */
import type { Task } from './task.ts'

/** An intrusive list of tasks; a task is in at most one list at a time. */
export class TaskList implements Iterable<Task> {
  private head: Task | undefined = undefined
  private tail: Task | undefined = undefined
  private count = 0

  /** Number of tasks in the list. */
  get size(): number {
    return this.count
  }

  /** Appends `task`, which must be in no list. */
  add(task: Task): void {
    if (task.cgList !== undefined) throw new Error(`task ${task.tid} is already in a css_set list`)
    task.cgList = this
    task.cgPrev = this.tail
    task.cgNext = undefined
    if (this.tail === undefined) this.head = task
    else this.tail.cgNext = task
    this.tail = task
    this.count++
  }

  /** Removes `task` if it is in this list; true if it was. */
  delete(task: Task): boolean {
    if (task.cgList !== this) return false
    const { cgPrev: prev, cgNext: next } = task
    if (prev === undefined) this.head = next
    else prev.cgNext = next
    if (next === undefined) this.tail = prev
    else next.cgPrev = prev
    task.cgList = undefined
    task.cgPrev = undefined
    task.cgNext = undefined
    this.count--
    return true
  }

  /** True if `task` is in this list. */
  has(task: Task): boolean {
    return task.cgList === this
  }

  /** The tasks in joining order. Removing the task just yielded is allowed, other changes are not (list_for_each_entry_safe). */
  *[Symbol.iterator](): Generator<Task> {
    for (let task = this.head; task !== undefined; ) {
      const next = task.cgNext
      yield task
      task = next
    }
  }
}
