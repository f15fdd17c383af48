/* tokens.c - token generation and the token file (ring/ring_format.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/log.h"
#include "ring/ring.h"
#include "ring/ring_format.h"

uint64_t ring_rand_next(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t ring_rand_seed(void) {
  uint64_t s = 0;
  if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s) {
    s = rt_mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)rt_now_ms();
  }
  return s;
}

static bool ring_sorted_has(const uint32_t *v, size_t n, uint32_t x) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (v[mid] == x) {
      return true;
    }
    if (v[mid] < x) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return false;
}

static int ring_u32_cmp(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

rt_err ring_tokens_generate(uint64_t *rng, const uint32_t *taken, size_t ntaken, uint32_t *out,
                            size_t n) {
  if (n == 0) {
    return RT_OK;
  }
  if (n > RING_MAX_TOKENS_PER_INSTANCE || ntaken > (size_t)UINT32_MAX / 2) {
    return RT_ELIMIT;
  }
  /* Draw, sort, drop what collides with `taken` or repeats, draw again for the gap. With at
   * most 2^31 tokens taken each round keeps at least half of its draws. */
  size_t have = 0;
  for (int round = 0; have < n; round++) {
    if (round > 64) {
      return RT_ELIMIT;
    }
    for (size_t i = have; i < n; i++) {
      out[i] = (uint32_t)(ring_rand_next(rng) >> 32);
    }
    qsort(out, n, sizeof *out, ring_u32_cmp);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
      if (w > 0 && out[w - 1] == out[i]) {
        continue;
      }
      if (ring_sorted_has(taken, ntaken, out[i])) {
        continue;
      }
      out[w++] = out[i];
    }
    have = w;
  }
  return RT_OK;
}

static void ring_put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static uint32_t ring_get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static rt_err ring_write_all(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      return RT_EIO;
    }
    p += w;
    n -= (size_t)w;
  }
  return RT_OK;
}

rt_err ring_tokens_save(const char *path, const uint32_t *tokens, size_t n) {
  if (n == 0 || n > RING_MAX_TOKENS_PER_INSTANCE) {
    return RT_EINVAL;
  }
  size_t size = (size_t)RING_TOKENS_FILE_SIZE(n);
  uint8_t *buf = rt_alloc(size);
  if (!buf) {
    return RT_ENOMEM;
  }
  ring_put32(buf, RING_TOKENS_MAGIC);
  buf[4] = (uint8_t)RING_TOKENS_VERSION;
  buf[5] = (uint8_t)(RING_TOKENS_VERSION >> 8);
  buf[6] = buf[7] = 0;
  ring_put32(buf + 8, (uint32_t)n);
  for (size_t i = 0; i < n; i++) {
    ring_put32(buf + 12 + 4 * i, tokens[i]);
  }
  ring_put32(buf + size - 4, XXH32(buf, size - 4, 0));

  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
    rt_free(buf, size);
    return RT_EINVAL;
  }
  rt_err err = RT_OK;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    rt_error("ring", "cannot create token file", "path=\"%s\" err=\"%s\"", tmp, strerror(errno));
    rt_free(buf, size);
    return RT_EIO;
  }
  err = ring_write_all(fd, buf, size);
  if (err == RT_OK && fsync(fd) != 0) {
    err = RT_EIO;
  }
  if (close(fd) != 0 && err == RT_OK) {
    err = RT_EIO;
  }
  rt_free(buf, size);
  if (err == RT_OK && rename(tmp, path) != 0) {
    err = RT_EIO;
  }
  if (err != RT_OK) {
    rt_error("ring", "cannot write token file", "path=\"%s\" err=\"%s\"", path, strerror(errno));
    unlink(tmp);
    return err;
  }
  /* make the rename durable */
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash) {
    *(slash == dir ? slash + 1 : slash) = 0;
  } else {
    snprintf(dir, sizeof dir, ".");
  }
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return RT_OK;
}

rt_err ring_tokens_load(const char *path, uint32_t **out, size_t *n, char *errbuf, size_t errlen) {
  *out = NULL;
  *n = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return RT_ENOTFOUND;
    }
    snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
    return RT_EIO;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
    close(fd);
    return RT_EIO;
  }
  uint64_t max = RING_TOKENS_FILE_SIZE(RING_MAX_TOKENS_PER_INSTANCE);
  if (st.st_size < (off_t)RING_TOKENS_FILE_SIZE(0) || (uint64_t)st.st_size > max) {
    snprintf(errbuf, errlen, "%s: bad size %lld bytes for a token file", path,
             (long long)st.st_size);
    close(fd);
    return RT_EPROTO;
  }
  size_t size = (size_t)st.st_size;
  uint8_t *buf = rt_alloc(size);
  if (!buf) {
    close(fd);
    return RT_ENOMEM;
  }
  size_t got = 0;
  while (got < size) {
    ssize_t r = read(fd, buf + got, size - got);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r <= 0) {
      break;
    }
    got += (size_t)r;
  }
  close(fd);
  rt_err err = RT_EPROTO;
  uint32_t magic = ring_get32(buf);
  unsigned version = (unsigned)buf[4] | (unsigned)buf[5] << 8;
  unsigned flags = (unsigned)buf[6] | (unsigned)buf[7] << 8;
  uint32_t count = ring_get32(buf + 8);
  if (got != size) {
    snprintf(errbuf, errlen, "%s: short read (%zu of %zu bytes)", path, got, size);
    err = RT_EIO;
  } else if (magic != RING_TOKENS_MAGIC) {
    snprintf(errbuf, errlen, "%s: bad magic 0x%08x, not a token file", path, magic);
  } else if (version != RING_TOKENS_VERSION) {
    snprintf(errbuf, errlen, "%s: unsupported token file version %u (want %u)", path, version,
             RING_TOKENS_VERSION);
  } else if (flags != 0) {
    snprintf(errbuf, errlen, "%s: unknown flags 0x%04x", path, flags);
  } else if (count == 0 || count > RING_MAX_TOKENS_PER_INSTANCE ||
             RING_TOKENS_FILE_SIZE(count) != size) {
    snprintf(errbuf, errlen, "%s: token count %u does not match the file size %zu", path, count,
             size);
  } else if (XXH32(buf, size - 4, 0) != ring_get32(buf + size - 4)) {
    snprintf(errbuf, errlen, "%s: checksum mismatch (stored 0x%08x, computed 0x%08x)", path,
             ring_get32(buf + size - 4), XXH32(buf, size - 4, 0));
  } else {
    uint32_t *t = rt_alloc((size_t)count * sizeof(uint32_t));
    if (!t) {
      err = RT_ENOMEM;
    } else {
      err = RT_OK;
      for (uint32_t i = 0; i < count; i++) {
        t[i] = ring_get32(buf + 12 + 4 * (size_t)i);
        if (i > 0 && t[i] <= t[i - 1]) {
          snprintf(errbuf, errlen, "%s: tokens not sorted and unique at index %u", path, i);
          err = RT_EPROTO;
          break;
        }
      }
      if (err == RT_OK) {
        *out = t;
        *n = count;
      } else {
        rt_free(t, (size_t)count * sizeof(uint32_t));
      }
    }
  }
  rt_free(buf, size);
  return err;
}
