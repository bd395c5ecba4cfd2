/* personmap.c — open-addressing map of person states with linear probing,
 * and the memory its slot tables live in. */
#include "core/personmap.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Slot tables of 2 MiB and more are their own anonymous mappings, asked for
 * huge pages and written once, page by page, before use. Why: the probe
 * loop reads a slot before it writes one, and a page first read is the
 * shared zero page, so its first write is a copy-on-write fault whose TLB
 * flush interrupts every other core running the process (with two replay
 * threads that was 17 % of all CPU time, perf); a page first written is
 * simply a new page. Huge pages (where the system grants them: THP
 * "madvise" or "always") make those faults 512 times fewer. Freed at once
 * with munmap, not left to the allocator's purging (more TLB flushes). The
 * mapping is memory, not I/O: the core still opens nothing. */
enum { TABLE_HUGE = 2u << 20 };

static size_t table_bytes(size_t cap) {
  size_t bytes = cap * sizeof(person_slot);
  return bytes < TABLE_HUGE ? bytes : (bytes + TABLE_HUGE - 1) / TABLE_HUGE * TABLE_HUGE;
}

static person_slot *table_alloc(size_t cap) {
  size_t bytes = table_bytes(cap);
  if (bytes < TABLE_HUGE)
    return calloc(cap, sizeof(person_slot));
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return NULL;
#ifdef MADV_HUGEPAGE
  madvise(p, bytes, MADV_HUGEPAGE); /* a hint: where refused, 4 KiB pages */
#endif
  for (size_t at = 0; at < bytes; at += 4096)
    ((volatile unsigned char *)p)[at] = 0;
  return p;
}

static void table_free(person_slot *slots, size_t cap) {
  if (!slots)
    return;
  size_t bytes = table_bytes(cap);
  if (bytes < TABLE_HUGE)
    free(slots);
  else
    munmap(slots, bytes);
}

int personmap_init(personmap *m, size_t expected) {
  size_t cap = 1024;
  while (cap / 4 * 3 < expected)
    cap *= 2;
  m->slots = table_alloc(cap);
  if (!m->slots)
    return -1;
  m->mask = cap - 1;
  m->count = 0;
  return 0;
}

void personmap_free(personmap *m) {
  if (m->slots)
    table_free(m->slots, m->mask + 1);
  memset(m, 0, sizeof *m);
}

static int grow(personmap *m) {
  size_t cap = (m->mask + 1) * 2;
  person_slot *slots = table_alloc(cap);
  if (!slots)
    return -1;
  for (size_t i = 0; i <= m->mask; i++) {
    const person_slot *s = &m->slots[i];
    if (!s->person_id)
      continue;
    size_t j = personmap_hash(s->person_id) & (cap - 1);
    while (slots[j].person_id)
      j = (j + 1) & (cap - 1);
    slots[j] = *s;
  }
  table_free(m->slots, m->mask + 1);
  m->slots = slots;
  m->mask = cap - 1;
  return 0;
}

person_slot *personmap_find(const personmap *m, int64_t person_id, uint64_t hash) {
  for (size_t i = hash & m->mask;; i = (i + 1) & m->mask) {
    person_slot *s = &m->slots[i];
    if (s->person_id == person_id)
      return s;
    if (!s->person_id)
      return NULL;
  }
}

person_slot *personmap_upsert(personmap *m, int64_t person_id, uint64_t hash, int *created) {
  for (;;) {
    size_t i = hash & m->mask;
    for (;; i = (i + 1) & m->mask) {
      person_slot *s = &m->slots[i];
      if (s->person_id == person_id) {
        *created = 0;
        return s;
      }
      if (!s->person_id)
        break;
    }
    if ((m->count + 1) * 4 <= (m->mask + 1) * 3) {
      person_slot *s = &m->slots[i];
      s->person_id = person_id;
      memset(&s->state, 0, sizeof s->state);
      m->count++;
      *created = 1;
      return s;
    }
    if (grow(m) < 0)
      return NULL;
  }
}

size_t personmap_bytes(const personmap *m) {
  return (m->mask + 1) * sizeof(person_slot);
}
