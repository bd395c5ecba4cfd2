/* ocf.c — reads Avro Object Container Files: maps the file, parses the
 * header (magic, metadata map with avro.schema and avro.codec, sync marker)
 * and frames blocks one at a time (count, size, data, sync). What cannot be
 * framed comes back as an OCF_BLOCK_DAMAGED region: when only the trailing
 * sync marker is wrong but the next block frames cleanly, the region is the
 * one block; otherwise it runs to the end of the next occurrence of the
 * file's sync marker (or to the end of the file). Decompression (codec.c) is
 * separate and thread-safe. Also the mapping's pages: given back behind the
 * reader, asked for ahead of it, and dropped from the page cache when the
 * inputs are larger than the memory the run may use (which it reads from
 * the cgroup files); such inputs may instead be read past the page cache
 * into a ring (ocf_direct.c), the mapping kept for what the ring cannot
 * frame (damaged regions, blocks longer than its span). */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "avro/codec.h"
#include "avro/ocf.h"
#include "avro/ocf_direct.h"

struct ocf_reader {
  char *path;
  const uint8_t *map;
  size_t size;
  char *schema;
  size_t schema_len;
  ocf_codec codec;
  uint8_t sync[16];
  size_t data_start; /* the first block (end of the header) */
  size_t pos;        /* where the next block starts */
  uint64_t block_index, record_index;
  _Atomic size_t released; /* pages before this were given back (ocf_release) */
  _Atomic size_t ahead;    /* pages before this were asked for (ocf_readahead) */
  int drop_fd; /* while released pages also leave the page cache (ocf_drop_behind); else -1 */
  dev_t dev;   /* the file that was mapped */
  ino_t ino;
  ocf_ring *ring;       /* read past the page cache (ocf_read_direct), or NULL */
  _Atomic int map_used; /* with a ring: a block was framed in the mapping */
};

/* Varint in [*p, end) (at most 10 bytes); 0 or -1. */
static int ocf_read_long(const uint8_t **p, const uint8_t *end, int64_t *out) {
  uint64_t r = 0;
  for (unsigned i = 0; i < 10; i++) {
    if (*p >= end)
      return -1;
    uint64_t b = *(*p)++;
    r |= (b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      *out = (int64_t)(r >> 1) ^ -(int64_t)(r & 1);
      return 0;
    }
  }
  return -1;
}

/* A length-prefixed string/bytes in [*p, end). */
static int ocf_read_bytes(const uint8_t **p, const uint8_t *end, const uint8_t **data,
                          size_t *len) {
  int64_t n;
  if (ocf_read_long(p, end, &n) < 0 || n < 0 || n > end - *p)
    return -1;
  *data = *p;
  *len = (size_t)n;
  *p += n;
  return 0;
}

static int ocf_parse_header(ocf_reader *r, char *err, size_t errlen) {
  /* An empty file is not mapped: no arithmetic on its NULL map. */
  if (r->size < 4 || memcmp(r->map, "Obj\x01", 4) != 0) {
    snprintf(err, errlen, "%s: not an Avro container file (bad magic)", r->path);
    return -1;
  }
  const uint8_t *p = r->map, *end = r->map + r->size;
  p += 4;
  const uint8_t *schema = NULL, *codec = NULL;
  size_t schema_len = 0, codec_len = 0;
  for (;;) {
    int64_t count, bytes;
    if (ocf_read_long(&p, end, &count) < 0)
      goto broken;
    if (count == 0)
      break;
    if (count < 0) {
      if (count == INT64_MIN || ocf_read_long(&p, end, &bytes) < 0)
        goto broken;
      count = -count;
    }
    if (count > end - p)
      goto broken;
    for (int64_t i = 0; i < count; i++) {
      const uint8_t *k, *v;
      size_t kl, vl;
      if (ocf_read_bytes(&p, end, &k, &kl) < 0 || ocf_read_bytes(&p, end, &v, &vl) < 0)
        goto broken;
      if (kl == 11 && memcmp(k, "avro.schema", 11) == 0) {
        schema = v;
        schema_len = vl;
      } else if (kl == 10 && memcmp(k, "avro.codec", 10) == 0) {
        codec = v;
        codec_len = vl;
      }
    }
  }
  if (end - p < 16)
    goto broken;
  memcpy(r->sync, p, 16);
  p += 16;
  if (!schema) {
    snprintf(err, errlen, "%s: header has no avro.schema", r->path);
    return -1;
  }
  r->codec = OCF_CODEC_NULL;
  if (codec) {
    char name[32];
    int c = -1;
    if (codec_len < sizeof name) {
      memcpy(name, codec, codec_len);
      name[codec_len] = '\0';
      c = ocf_codec_from_name(name);
    }
    if (c < 0) {
      /* The name is the file's bytes: keep the error one printable line. */
      char shown[41];
      size_t n = codec_len > 40 ? 40 : codec_len;
      for (size_t i = 0; i < n; i++)
        shown[i] = codec[i] >= 0x20 && codec[i] < 0x7f ? (char)codec[i] : '?';
      shown[n] = '\0';
      snprintf(err, errlen, "%s: unknown codec '%s'", r->path, shown);
      return -1;
    }
    r->codec = (ocf_codec)c;
  }
  r->schema = malloc(schema_len + 1);
  if (!r->schema) {
    snprintf(err, errlen, "%s: out of memory", r->path);
    return -1;
  }
  memcpy(r->schema, schema, schema_len);
  r->schema[schema_len] = '\0';
  r->schema_len = schema_len;
  r->pos = r->data_start = (size_t)(p - r->map);
  return 0;
broken:
  snprintf(err, errlen, "%s: broken container header", r->path);
  return -1;
}

ocf_reader *ocf_open(const char *path, char *err, size_t errlen) {
  ocf_reader *r = calloc(1, sizeof *r);
  if (!r || !(r->path = strdup(path))) {
    snprintf(err, errlen, "%s: out of memory", path);
    free(r);
    return NULL;
  }
  r->drop_fd = -1;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    ocf_close(r);
    return NULL;
  }
  struct stat st;
  errno = 0;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "%s: %s", path, errno ? strerror(errno) : "not a regular file");
    close(fd);
    ocf_close(r);
    return NULL;
  }
  r->size = (size_t)st.st_size;
  if (r->size > 0) {
    void *m = mmap(NULL, r->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      snprintf(err, errlen, "%s: mmap: %s", path, strerror(errno));
      close(fd);
      r->size = 0;
      ocf_close(r);
      return NULL;
    }
    r->map = m;
    madvise(m, r->size, MADV_SEQUENTIAL);
  }
  r->dev = st.st_dev;
  r->ino = st.st_ino;
  close(fd);
  if (ocf_parse_header(r, err, errlen) < 0) {
    ocf_close(r);
    return NULL;
  }
  return r;
}

void ocf_close(ocf_reader *r) {
  if (!r)
    return;
  ocf_ring_close(r->ring);
  if (r->map)
    munmap((void *)r->map, r->size);
  if (r->drop_fd >= 0)
    close(r->drop_fd);
  free(r->schema);
  free(r->path);
  free(r);
}

void ocf_release(ocf_reader *r, uint64_t end_offset) {
  /* Whole pages below end_offset only: the page holding it may still carry
   * bytes of a block in flight. Dropping a mapped page is always safe: a
   * later touch faults it in again from the page cache. Given back in
   * steps of RELEASE_STEP from where the last step ended (and the rest at
   * the end of the file): each madvise flushes the TLB of every core the
   * process runs on, and one per block was measurable with two workers. */
  enum { RELEASE_STEP = 8u << 20 };
  if (r->ring) {
    ocf_ring_release(r->ring, end_offset);
    if (!atomic_load_explicit(&r->map_used, memory_order_relaxed))
      return; /* no page of the mapping was touched */
  }
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t end = end_offset < r->size ? (size_t)end_offset : r->size;
  size_t from = atomic_load_explicit(&r->released, memory_order_relaxed);
  if (end < r->size)
    end -= end % page;
  if (!r->map || end <= from || (end - from < RELEASE_STEP && end < r->size))
    return;
  /* Several workers may release at once: the one that moves the mark gives
   * back [from, end); a range given back twice is harmless. */
  if (!atomic_compare_exchange_strong(&r->released, &from, end))
    return;
  madvise((void *)(r->map + from), end - from, MADV_DONTNEED);
  if (r->drop_fd >= 0)
    posix_fadvise(r->drop_fd, (off_t)from, (off_t)(end - from), POSIX_FADV_DONTNEED);
}

/* Lowers *limit to the least of the files (bytes; "max" and unreadable
 * ones are no limit) of cgroup path under root and of the cgroups above it. */
static void least_cgroup_limit(const char *root, char *path, const char *const files[2],
                               uint64_t *limit) {
  for (;;) {
    for (int i = 0; i < 2; i++) {
      char file[2200];
      unsigned long long bytes;
      snprintf(file, sizeof file, "%s%s/%s", root, path[1] ? path : "", files[i]);
      FILE *m = fopen(file, "re");
      if (!m)
        continue;
      if (fscanf(m, "%llu", &bytes) == 1 && bytes < *limit)
        *limit = bytes;
      fclose(m);
    }
    char *slash = strrchr(path, '/');
    if (!path[1] || !slash)
      return;
    slash[slash == path] = 0; /* the parent; "/" after the top */
  }
}

uint64_t ocf_cgroup_memory_limit(const char *proc_cgroup, const char *sys_cgroup) {
  static const char *const v2[2] = {"memory.max", "memory.high"};
  static const char *const v1[2] = {"memory.limit_in_bytes", "memory.soft_limit_in_bytes"};
  uint64_t limit = UINT64_MAX;
  char line[2048], root[1024];
  FILE *f = fopen(proc_cgroup, "re");
  if (!f)
    return limit;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    /* "ID:CONTROLLERS:PATH"; v2 is "0::PATH" */
    char *controllers = strchr(line, ':');
    char *path = controllers ? strchr(controllers + 1, ':') : NULL;
    if (!path || path[1] != '/')
      continue;
    *controllers++ = 0;
    *path++ = 0;
    if (!strcmp(line, "0") && !*controllers) {
      least_cgroup_limit(sys_cgroup, path, v2, &limit);
    } else if (!strcmp(controllers, "memory")) {
      snprintf(root, sizeof root, "%s/memory", sys_cgroup);
      least_cgroup_limit(root, path, v1, &limit);
    }
  }
  fclose(f);
  return limit;
}

uint64_t ocf_cache_room(void) {
  const char *test = getenv("REGSTREAM_CACHE_ROOM");
  if (test && *test)
    return strtoull(test, NULL, 10);
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  uint64_t memory = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : UINT64_MAX;
  uint64_t limit = ocf_cgroup_memory_limit("/proc/self/cgroup", "/sys/fs/cgroup");
  return (limit < memory ? limit : memory) / 2;
}

size_t ocf_drop_behind(ocf_reader *const *readers, size_t n, uint64_t room) {
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++)
    total += readers[i]->size;
  if (total <= room)
    return 0;
  size_t dropping = 0;
  for (size_t i = 0; i < n; i++) {
    ocf_reader *r = readers[i];
    struct stat st;
    int fd = r->drop_fd >= 0 ? -1 : open(r->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) /* out of descriptors, or already dropping: as it is */
      continue;
    if (fstat(fd, &st) == 0 && st.st_dev == r->dev && st.st_ino == r->ino) {
      r->drop_fd = fd;
      dropping++;
    } else { /* replaced since it was mapped: not the file being read */
      close(fd);
    }
  }
  return dropping;
}

void ocf_readahead(ocf_reader *r, uint64_t offset) {
  /* The kernel's own readahead on faults of a mapping reads 128 KiB at a
   * time (read_ahead_kb here), one request in flight. MADV_WILLNEED starts
   * reads of the next window without waiting for them, asked for in steps
   * as ocf_release gives pages back; pages already cached cost a lookup.
   * The 20-year history (31.6 GB, more than the page cache), 2 threads:
   * 127 s without, 96.5 s with (64 MiB ahead in 16 MiB steps); 128 MiB in
   * 8 MiB steps: 0.91 of that on a cold 6.3 GB file (the median of 4 pairs). */
  enum { WINDOW = 128u << 20, STEP = 8u << 20 };
  size_t want = offset + WINDOW < r->size ? (size_t)offset + WINDOW : r->size;
  size_t from = atomic_load_explicit(&r->ahead, memory_order_relaxed);
  if (!r->map || r->ring || want <= from || (want - from < STEP && want < r->size))
    return;
  /* Several workers may ask at once: the one that moves the mark asks. */
  if (!atomic_compare_exchange_strong(&r->ahead, &from, want))
    return;
  if (from < offset) /* the first call, or after a seek */
    from = (size_t)offset;
  from -= from % (size_t)sysconf(_SC_PAGESIZE);
  madvise((void *)(r->map + from), want - from, MADV_WILLNEED);
}

const char *ocf_path(const ocf_reader *r) {
  return r->path;
}
const char *ocf_schema_json(const ocf_reader *r) {
  return r->schema;
}
size_t ocf_schema_json_len(const ocf_reader *r) {
  return r->schema_len;
}
ocf_codec ocf_reader_codec(const ocf_reader *r) {
  return r->codec;
}

ocf_position ocf_tell(const ocf_reader *r) {
  return (ocf_position){r->pos, r->block_index, r->record_index};
}

int ocf_seek(ocf_reader *r, const ocf_position *p, char *err, size_t errlen) {
  if (p->offset < r->data_start || p->offset > r->size) {
    snprintf(err, errlen, "%s: offset %llu is outside its blocks (%zu..%zu)", r->path,
             (unsigned long long)p->offset, r->data_start, r->size);
    return -1;
  }
  r->pos = (size_t)p->offset;
  r->block_index = p->block_index;
  r->record_index = p->first_record;
  if (r->ring)
    ocf_ring_restart(r->ring);
  return 0;
}

uint64_t ocf_file_size(const ocf_reader *r) {
  return r->size;
}

const uint8_t *ocf_sync_marker(const ocf_reader *r) {
  return r->sync;
}

/* Frame a block at file offset pos, whose bytes start at p and whose
 * readable bytes end at end (the file's end in the mapping, or the end of a
 * span of the ring). 1: fully framed (data/size/count and the offset after
 * its sync in *next). 0: the header parses and the block fits but its sync
 * marker is wrong (*next as if it were right). -1: no. */
static int ocf_frame_at(const ocf_reader *r, const uint8_t *p, const uint8_t *end, size_t pos,
                        ocf_block *out, size_t *next) {
  const uint8_t *at = p;
  int64_t count, size;
  if (ocf_read_long(&p, end, &count) < 0 || ocf_read_long(&p, end, &size) < 0)
    return -1;
  if (count < 0 || size < 0 || (uint64_t)count > CODEC_MAX_BLOCK)
    return -1;
  if (r->codec == OCF_CODEC_NULL && count > size)
    return -1; /* every datum of a PersonMonth writer takes bytes */
  if (size > end - p || end - p - size < 16)
    return -1;
  out->kind = OCF_BLOCK_OK;
  out->data = p;
  out->size = (size_t)size;
  out->count = count;
  out->file_offset = pos + (uint64_t)(p - at);
  *next = pos + (size_t)(p + size + 16 - at);
  return memcmp(p + size, r->sync, 16) == 0 ? 1 : 0;
}

static int ocf_frame(const ocf_reader *r, size_t pos, ocf_block *out, size_t *next) {
  return ocf_frame_at(r, r->map + pos, r->map + r->size, pos, out, next);
}

/* The walk's step taken in the mapping: a block, or a damaged region. */
static int map_next_block(ocf_reader *r, ocf_block *out) {
  size_t next;
  int framed = ocf_frame(r, r->pos, out, &next);
  if (framed == 1) {
    out->index = r->block_index++;
    out->first_record = r->record_index;
    r->record_index += (uint64_t)out->count;
    r->pos = next;
    return 1;
  }
  /* Damaged. If only the sync marker is off and a good block (or the end of
   * the file) follows, lose just this block. */
  size_t stop = 0;
  if (framed == 0) {
    ocf_block probe;
    size_t after;
    if (next == r->size || ocf_frame(r, next, &probe, &after) == 1)
      stop = next;
  }
  if (!stop) {
    const uint8_t *hit = memmem(r->map + r->pos, r->size - r->pos, r->sync, 16);
    stop = hit ? (size_t)(hit - r->map) + 16 : r->size;
  }
  out->kind = OCF_BLOCK_DAMAGED;
  out->data = r->map + r->pos;
  out->size = stop - r->pos;
  out->count = -1;
  out->index = r->block_index++;
  out->first_record = r->record_index;
  out->file_offset = r->pos;
  r->pos = stop;
  return 1;
}

/* The walk's step taken in the ring: the block at pos when it frames in a
 * span of the ring; else (damaged, longer than a span, or with wait the
 * ring full of bytes not yet released) in the mapping. */
static int ring_next_block(ocf_reader *r, ocf_block *out, int wait) {
  enum { HEADER_MAX = 20 }; /* two varints */
  size_t pos = r->pos, span = ocf_ring_span();
  size_t to = r->size - pos < HEADER_MAX ? r->size : pos + HEADER_MAX;
  const uint8_t *p;
  int got = ocf_ring_get(r->ring, pos, to, wait, &p);
  if (got == OCF_RING_READY) {
    const uint8_t *q = p, *end = p + (to - pos);
    int64_t count, size;
    got = OCF_RING_TOO_FAR; /* unless it frames below: the mapping takes it */
    if (ocf_read_long(&q, end, &count) == 0 && ocf_read_long(&q, end, &size) == 0 && size >= 0) {
      uint64_t total = (uint64_t)(q - p) + (uint64_t)size + 16; /* header, data, sync */
      if (total <= span && total <= r->size - pos) {
        to = pos + (size_t)total;
        got = ocf_ring_get(r->ring, pos, to, wait, &p);
        size_t next;
        if (got == OCF_RING_READY && ocf_frame_at(r, p, p + (to - pos), pos, out, &next) == 1) {
          out->index = r->block_index++;
          out->first_record = r->record_index;
          r->record_index += (uint64_t)out->count;
          r->pos = next;
          return OCF_GOT;
        }
        if (got == OCF_RING_READY)
          got = OCF_RING_TOO_FAR;
      }
    }
  }
  if (got == OCF_RING_NOT_YET)
    return OCF_NOT_YET;
  if (got == OCF_RING_FAILED)
    return OCF_FAILED;
  atomic_store_explicit(&r->map_used, 1, memory_order_relaxed);
  return map_next_block(r, out);
}

int ocf_next_block(ocf_reader *r, ocf_block *out) {
  if (r->pos >= r->size)
    return OCF_END;
  return r->ring ? ring_next_block(r, out, 1) : map_next_block(r, out);
}

int ocf_poll_block(ocf_reader *r, ocf_block *out) {
  if (r->pos >= r->size)
    return OCF_END;
  return r->ring ? ring_next_block(r, out, 0) : map_next_block(r, out);
}

size_t ocf_read_direct(ocf_reader *const *readers, size_t n, void (*landed)(void *arg), void *arg) {
  size_t direct = 0;
  for (size_t i = 0; i < n; i++) {
    ocf_reader *r = readers[i];
    if (r->drop_fd < 0 || r->ring)
      continue; /* not dropping behind (it fits), or already */
    r->ring = ocf_ring_open(r->path, r->dev, r->ino, r->size, landed, arg);
    direct += r->ring != NULL;
  }
  return direct;
}

int ocf_failure(const ocf_reader *r, char *why, size_t len) {
  char what[300];
  if (!r->ring) {
    snprintf(why, len, "%s: no read failed", r->path);
    return 0;
  }
  int e = ocf_ring_failure(r->ring, what, sizeof what);
  snprintf(why, len, "%s: %s", r->path, what);
  return e;
}

int ocf_block_decompress(const ocf_reader *r, const ocf_block *b, ocf_buf *out, char *err,
                         size_t errlen) {
  if (b->kind != OCF_BLOCK_OK) {
    snprintf(err, errlen, "damaged block");
    return -1;
  }
  return codec_decompress(r->codec, b->data, b->size, out, err, errlen);
}
