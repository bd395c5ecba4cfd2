/* personmap.c — open-addressing map of person states with linear probing. */
#include "core/personmap.h"

#include <stdlib.h>
#include <string.h>

int personmap_init(personmap *m, size_t expected) {
  size_t cap = 1024;
  while (cap / 4 * 3 < expected)
    cap *= 2;
  m->slots = calloc(cap, sizeof *m->slots);
  if (!m->slots)
    return -1;
  m->mask = cap - 1;
  m->count = 0;
  return 0;
}

void personmap_free(personmap *m) {
  free(m->slots);
  memset(m, 0, sizeof *m);
}

static int grow(personmap *m) {
  size_t cap = (m->mask + 1) * 2;
  person_slot *slots = calloc(cap, sizeof *slots);
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
  free(m->slots);
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
