/* shard.c — a worker's persons and counters, and the one call the hot path
 * makes into the rules. */
#include "state/shard.h"

#include <string.h>

int shard_init(shard *s, const rules_config *rules, size_t expected_persons) {
  memset(s, 0, sizeof *s);
  s->rules = rules;
  rollup_init(&s->counts);
  return personmap_init(&s->persons, expected_persons, 0);
}

void shard_free(shard *s) {
  personmap_free(&s->persons);
  rollup_free(&s->counts);
}

int shard_apply(shard *s, const pm_record *rec, uint64_t hash) {
  int created;
  person_state *st = personmap_upsert(&s->persons, rec->person_id, hash, &created);
  if (!st)
    return -1;
  if (created) {
    rules_first(s->rules, st, rec, &s->counts);
    s->applied++;
    return RULES_APPLIED;
  }
  rules_result r = rules_apply(s->rules, st, rec, &s->counts);
  if (r == RULES_APPLIED)
    s->applied++;
  else if (r == RULES_CORRECTED)
    s->corrected++;
  else
    s->late++;
  return (int)r;
}
