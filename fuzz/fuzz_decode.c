/* fuzz_decode.c - libFuzzer target for the remote-write decoder (snappy + protobuf).
 *
 * Byte 0 picks the mode: even = the rest is an HTTP body (snappy block), odd = the rest is an
 * uncompressed WriteRequest, decoded both by dist_decode_proto and by protobuf-c; whatever both
 * accept must decode to the same series, samples and metadata. Every accepted request is then
 * validated and packed into an ingester push, as the distributor does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distributor/dist_int.h"
#include "fuzz_seeds.h"
#include "rpc.pb-c.h"

static dist_limits L;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_maybe_write_seeds();
  dist_limits_default(&L);
  L.max_decompressed_size = 4u << 20; /* keep the fuzzer's memory small */
  return 0;
}

static void same_string(const char *a, const char *b) {
  if (strcmp(a, b) != 0) {
    abort();
  }
}

static void compare(const Prometheus__WriteRequest *ref, const Prometheus__WriteRequest *got) {
  if (ref->n_timeseries != got->n_timeseries || ref->n_metadata != got->n_metadata) {
    abort();
  }
  for (size_t i = 0; i < ref->n_timeseries; i++) {
    const Prometheus__TimeSeries *a = ref->timeseries[i], *b = got->timeseries[i];
    if (a->n_labels != b->n_labels || a->n_samples != b->n_samples) {
      abort();
    }
    for (size_t j = 0; j < a->n_labels; j++) {
      same_string(a->labels[j]->name, b->labels[j]->name);
      same_string(a->labels[j]->value, b->labels[j]->value);
    }
    for (size_t j = 0; j < a->n_samples; j++) {
      if (a->samples[j]->timestamp != b->samples[j]->timestamp ||
          memcmp(&a->samples[j]->value, &b->samples[j]->value, sizeof(double)) != 0) {
        abort();
      }
    }
  }
  for (size_t i = 0; i < ref->n_metadata; i++) {
    const Prometheus__MetricMetadata *a = ref->metadata[i], *b = got->metadata[i];
    if (a->type != b->type) {
      abort();
    }
    same_string(a->metric_family_name, b->metric_family_name);
    same_string(a->help, b->help);
    same_string(a->unit, b->unit);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) {
    return 0;
  }
  int mode = data[0] & 1;
  data++;
  size--;
  rt_arena *arena = rt_arena_create(0);
  if (!arena) {
    return 0;
  }
  char err[1024];
  dist_request req;
  rt_err e;
  if (mode == FUZZ_MODE_SNAPPY) {
    e = dist_decode(data, size, &L, arena, &req, err, sizeof err);
  } else {
    e = dist_decode_proto(data, size, arena, &req, err, sizeof err);
    ProtobufCAllocator al = rt_arena_pb_allocator(arena);
    Prometheus__WriteRequest *ref = prometheus__write_request__unpack(&al, size, data);
    if (ref && e == RT_OK) {
      compare(ref, req.wr);
    }
    if (ref && e == RT_EPROTO && !strstr(err, "field number out of range") &&
        !strstr(err, "field number 0") && !strstr(err, "longer than 64 bits")) {
      /* protobuf-c accepted what we call malformed (it lets field numbers above 2^29-1 pass
       * and field number 0 as unknown fields and drops the excess bits of 10-byte varints; protobuf forbids both
       * and so do we) */
      fprintf(stderr, "protobuf-c accepts, dist_decode_proto says: %s\n", err);
      abort();
    }
  }
  if (e != RT_OK) {
    if (e != RT_EPROTO && e != RT_ELIMIT && e != RT_ENOMEM) {
      abort();
    }
    if (err[0] == 0) {
      abort(); /* every rejection says why */
    }
  } else {
    dist_report rep;
    dist_validate(&req, &L, FUZZ_NOW, &rep);
    /* what the distributor sends on must decode to exactly the validated request */
    uint8_t *buf;
    size_t n;
    if (dist_encode_push("fuzz", &req, arena, &buf, &n) == RT_OK) {
      ProtobufCAllocator al = rt_arena_pb_allocator(arena);
      Ringtail__PushRequest *pr = ringtail__push_request__unpack(&al, n, buf);
      if (!pr || strcmp(pr->tenant, "fuzz") != 0) {
        abort();
      }
      Prometheus__WriteRequest back = PROMETHEUS__WRITE_REQUEST__INIT;
      back.n_timeseries = pr->n_timeseries;
      back.timeseries = pr->timeseries;
      back.n_metadata = pr->n_metadata;
      back.metadata = pr->metadata;
      compare(req.wr, &back);
    }
  }
  rt_arena_destroy(arena);
  return 0;
}
