/* personmap.c — the two open-addressing tables of person states (compact
 * and wide, linear probing), the walk and the bulk copy over both, and the
 * memory their slot tables live in. */
#include "core/personmap.h"

#include <stdint.h>
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

/* Smallest capacities: the compact table is where ids usually are; the
 * wide one often stays empty. */
enum { MIN_SLOTS = 1024, MIN_WIDE_SLOTS = 64 };

static size_t table_bytes(size_t cap, size_t slot) {
  size_t bytes = cap * slot;
  return bytes < TABLE_HUGE ? bytes : (bytes + TABLE_HUGE - 1) / TABLE_HUGE * TABLE_HUGE;
}

/* Ask for huge pages over [p, p + bytes) and write each page once. */
static void table_touch(unsigned char *p, size_t bytes) {
#ifdef MADV_HUGEPAGE
  madvise(p, bytes, MADV_HUGEPAGE); /* a hint: where refused, 4 KiB pages */
#endif
  for (size_t at = 0; at < bytes; at += 4096)
    ((volatile unsigned char *)p)[at] = 0;
}

static void *table_alloc(size_t cap, size_t slot) {
  size_t bytes = table_bytes(cap, slot);
  if (bytes < TABLE_HUGE)
    return calloc(cap, slot);
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return NULL;
  table_touch(p, bytes);
  return p;
}

static void table_free(void *slots, size_t cap, size_t slot) {
  if (!slots)
    return;
  size_t bytes = table_bytes(cap, slot);
  if (bytes < TABLE_HUGE)
    free(slots);
  else
    munmap(slots, bytes);
}

/* The table slots (cap slots) made 2 * cap slots in place, as far as the
 * memory allows: its first half as it was, its second zeroed; NULL (the
 * table as it was) when memory is short. A mapping keeps its pages (moved,
 * not copied, to an address aligned for huge pages when it cannot grow where
 * it lies): only the new half is ever zeroed, where allocating anew zeroed
 * twice the final table over all the growths (the kernel's page clearing
 * was 8 % of a national replay, perf) and held three halves at once. */
static void *table_double(void *slots, size_t cap, size_t slot) {
  size_t old = table_bytes(cap, slot), bytes = table_bytes(2 * cap, slot);
  if (bytes < TABLE_HUGE) {
    unsigned char *p = realloc(slots, bytes);
    if (p)
      memset(p + old, 0, bytes - old);
    return p;
  }
  if (old < TABLE_HUGE) { /* from the allocator to a mapping of its own */
    unsigned char *p = table_alloc(2 * cap, slot);
    if (p) {
      memcpy(p, slots, old);
      free(slots);
    }
    return p;
  }
  size_t reserve = bytes + TABLE_HUGE;
  unsigned char *area =
      mmap(NULL, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (area == MAP_FAILED)
    return NULL;
  unsigned char *at =
      (unsigned char *)(((uintptr_t)area + TABLE_HUGE - 1) & ~(uintptr_t)(TABLE_HUGE - 1));
  unsigned char *p = mremap(slots, old, bytes, MREMAP_MAYMOVE | MREMAP_FIXED, at);
  if (p == MAP_FAILED) {
    munmap(area, reserve);
    return NULL;
  }
  if (at > area) /* the reservation around the table */
    munmap(area, (size_t)(at - area));
  if (area + reserve > at + bytes)
    munmap(at + bytes, (size_t)(area + reserve - (at + bytes)));
  table_touch(p + old, bytes - old);
  return p;
}

/* A capacity for expected persons at no more than 3/4 load. */
static size_t capacity_for(size_t expected, size_t least) {
  size_t cap = least;
  while (cap / 4 * 3 < expected)
    cap *= 2;
  return cap;
}

int personmap_init(personmap *m, size_t narrow, size_t wide) {
  memset(m, 0, sizeof *m);
  size_t cap = capacity_for(narrow, MIN_SLOTS), wcap = capacity_for(wide, MIN_WIDE_SLOTS);
  m->slots = table_alloc(cap, sizeof(person_slot));
  m->wide = table_alloc(wcap, sizeof(person_wide_slot));
  if (!m->slots || !m->wide) {
    table_free(m->slots, cap, sizeof(person_slot));
    table_free(m->wide, wcap, sizeof(person_wide_slot));
    memset(m, 0, sizeof *m);
    return -1;
  }
  m->mask = cap - 1;
  m->wide_mask = wcap - 1;
  return 0;
}

void personmap_free(personmap *m) {
  if (m->slots)
    table_free(m->slots, m->mask + 1, sizeof(person_slot));
  if (m->wide)
    table_free(m->wide, m->wide_mask + 1, sizeof(person_wide_slot));
  memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------ the compact table */

/* Double the compact table in place. An entry's home in the doubled
 * table is its old home h or h + cap. The slots before the first empty one
 * (a cluster that may have wrapped around the end) are set aside; every
 * other entry, in slot order, is taken out and put back from its new home:
 * it lands at or before its old slot (h) or that slot + cap (h + cap), so
 * nothing wraps and every slot between its home and it is already final.
 * The set-aside ones go back last, as ordinary inserts. */
static int grow(personmap *m) {
  size_t cap = m->mask + 1, first_empty = 0;
  while (m->slots[first_empty].person_id)
    first_empty++;
  person_slot few[64], *aside = first_empty <= 64 ? few : malloc(first_empty * sizeof *aside);
  person_slot *slots = aside ? table_double(m->slots, cap, sizeof *slots) : NULL;
  if (!slots) {
    if (aside != few)
      free(aside);
    return -1;
  }
  size_t mask = 2 * cap - 1;
  memcpy(aside, slots, first_empty * sizeof *slots);
  memset(slots, 0, first_empty * sizeof *slots);
  for (size_t i = first_empty + 1; i < cap + first_empty; i++) {
    size_t at = i < cap ? i : i - cap; /* then the set-aside ones */
    person_slot s = i < cap ? slots[at] : aside[at];
    if (!s.person_id)
      continue;
    if (i < cap)
      slots[at].person_id = 0;
    size_t j = personmap_hash(s.person_id) & mask;
    while (slots[j].person_id)
      j = (j + 1) & mask;
    slots[j] = s;
  }
  if (aside != few)
    free(aside);
  m->slots = slots;
  m->mask = mask;
  return 0;
}

static person_state *find_narrow(const personmap *m, uint32_t id, uint64_t hash) {
  for (size_t i = hash & m->mask;; i = (i + 1) & m->mask) {
    person_slot *s = &m->slots[i];
    if (s->person_id == id)
      return &s->state;
    if (!s->person_id)
      return NULL;
  }
}

static person_state *upsert_narrow(personmap *m, uint32_t id, uint64_t hash, int *created) {
  for (;;) {
    size_t i = hash & m->mask;
    for (;; i = (i + 1) & m->mask) {
      person_slot *s = &m->slots[i];
      if (s->person_id == id) {
        *created = 0;
        return &s->state;
      }
      if (!s->person_id)
        break;
    }
    if ((m->count - m->wide_count + 1) * 4 <= (m->mask + 1) * 3) {
      person_slot *s = &m->slots[i];
      s->person_id = id;
      memset(&s->state, 0, sizeof s->state);
      m->count++;
      *created = 1;
      return &s->state;
    }
    if (grow(m) < 0)
      return NULL;
  }
}

/* ------------------------------------------------------------------ the wide table */

static inline int64_t wide_id(const person_wide_slot *s) {
  int64_t id;
  memcpy(&id, s->person_id, sizeof id);
  return id;
}

static int grow_wide(personmap *m) {
  size_t cap = (m->wide_mask + 1) * 2;
  person_wide_slot *slots = table_alloc(cap, sizeof *slots);
  if (!slots)
    return -1;
  for (size_t i = 0; i <= m->wide_mask; i++) {
    const person_wide_slot *s = &m->wide[i];
    int64_t id = wide_id(s);
    if (!id)
      continue;
    size_t j = personmap_hash(id) & (cap - 1);
    while (wide_id(&slots[j]))
      j = (j + 1) & (cap - 1);
    slots[j] = *s;
  }
  table_free(m->wide, m->wide_mask + 1, sizeof *slots);
  m->wide = slots;
  m->wide_mask = cap - 1;
  return 0;
}

static person_state *find_wide(const personmap *m, int64_t id, uint64_t hash) {
  for (size_t i = hash & m->wide_mask;; i = (i + 1) & m->wide_mask) {
    person_wide_slot *s = &m->wide[i];
    int64_t at = wide_id(s);
    if (at == id)
      return &s->state;
    if (!at)
      return NULL;
  }
}

static person_state *upsert_wide(personmap *m, int64_t id, uint64_t hash, int *created) {
  for (;;) {
    size_t i = hash & m->wide_mask;
    for (;; i = (i + 1) & m->wide_mask) {
      person_wide_slot *s = &m->wide[i];
      int64_t at = wide_id(s);
      if (at == id) {
        *created = 0;
        return &s->state;
      }
      if (!at)
        break;
    }
    if ((m->wide_count + 1) * 4 <= (m->wide_mask + 1) * 3) {
      person_wide_slot *s = &m->wide[i];
      memcpy(s->person_id, &id, sizeof id);
      memset(&s->state, 0, sizeof s->state);
      m->count++;
      m->wide_count++;
      *created = 1;
      return &s->state;
    }
    if (grow_wide(m) < 0)
      return NULL;
  }
}

/* ------------------------------------------------------------------ both */

person_state *personmap_find(const personmap *m, int64_t person_id, uint64_t hash) {
  if (personmap_narrow(person_id))
    return find_narrow(m, (uint32_t)person_id, hash);
  return find_wide(m, person_id, hash);
}

person_state *personmap_upsert(personmap *m, int64_t person_id, uint64_t hash, int *created) {
  if (personmap_narrow(person_id))
    return upsert_narrow(m, (uint32_t)person_id, hash, created);
  return upsert_wide(m, person_id, hash, created);
}

/* Positions 0..cap-1 are the compact table's slots, cap..cap+wcap-1 the
 * wide table's. */
person_state *personmap_next(const personmap *m, size_t *at, int64_t *person_id) {
  size_t i = *at, cap = m->slots ? m->mask + 1 : 0, wcap = m->wide ? m->wide_mask + 1 : 0;
  for (; i < cap; i++)
    if (m->slots[i].person_id) {
      *at = i + 1;
      *person_id = m->slots[i].person_id;
      return &m->slots[i].state;
    }
  for (; i < cap + wcap; i++) {
    int64_t id = wide_id(&m->wide[i - cap]);
    if (id) {
      *at = i + 1;
      *person_id = id;
      return &m->wide[i - cap].state;
    }
  }
  *at = i;
  return NULL;
}

size_t personmap_export(const personmap *m, person_entry *out, size_t max) {
  size_t k = 0, cap = m->slots ? m->mask + 1 : 0, wcap = m->wide ? m->wide_mask + 1 : 0;
  for (size_t i = 0; i < cap && k <= max; i++) {
    const person_slot *s = &m->slots[i];
    out[k].person_id = s->person_id;
    out[k].state = s->state;
    k += s->person_id != 0;
  }
  for (size_t i = 0; i < wcap && k <= max; i++) {
    const person_wide_slot *s = &m->wide[i];
    int64_t id = wide_id(s);
    out[k].person_id = id;
    out[k].state = s->state;
    k += id != 0;
  }
  return k;
}

size_t personmap_bytes(const personmap *m) {
  return (m->slots ? (m->mask + 1) * sizeof(person_slot) : 0) +
         (m->wide ? (m->wide_mask + 1) * sizeof(person_wide_slot) : 0);
}
