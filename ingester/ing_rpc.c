/* ing_rpc.c - the ingester's RPC service: unpack the request with an arena, call ing_*, pack the
 * reply into the rt_buf. */
#include <stdio.h>
#include <string.h>

#include "common/rpc.h"
#include "ingester/ing_ha.h"
#include "ingester/ing_int.h"

#define ING_RPC_ARENA (64 * 1024)

/* Packs a reply message into `reply`. */
static rt_err ing_pack(const ProtobufCMessage *msg, rt_buf *reply) {
  size_t n = protobuf_c_message_get_packed_size(msg);
  rt_buf_reset(reply);
  rt_buf_reserve(reply, n);
  if (reply->oom) {
    return RT_ENOMEM;
  }
  protobuf_c_message_pack(msg, (uint8_t *)reply->data);
  reply->len = n;
  return RT_OK;
}

#define ING_HANDLER(fname, ReqT, req_unpack, RespT, resp_init, call)                               \
  static rt_err fname(void *ctx, const uint8_t *req, size_t req_len, rt_buf *reply, char *errbuf, \
                      size_t errlen) {                                                             \
    ing_ingester *ing = ctx;                                                                       \
    rt_arena *arena = rt_arena_create(ING_RPC_ARENA);                                              \
    if (!arena) {                                                                                  \
      return RT_ENOMEM;                                                                            \
    }                                                                                              \
    ProtobufCAllocator al = rt_arena_pb_allocator(arena);                                          \
    ReqT *r = req_unpack(&al, req_len, req);                                                       \
    if (!r) {                                                                                      \
      rt_arena_destroy(arena);                                                                     \
      snprintf(errbuf, errlen, "malformed %s request", #ReqT);                                      \
      return RT_EPROTO;                                                                            \
    }                                                                                              \
    RespT resp;                                                                                    \
    resp_init(&resp);                                                                              \
    rt_err err = call(ing, r, &resp, arena);                                                       \
    if (err) {                                                                                     \
      snprintf(errbuf, errlen, "%s", rt_strerror(err));                                            \
    } else {                                                                                       \
      err = ing_pack(&resp.base, reply);                                                           \
    }                                                                                              \
    rt_arena_destroy(arena);                                                                       \
    return err;                                                                                    \
  }

/* Push decodes into an arena sized for the request (ing_decode_push). */
static rt_err ing_handle_push(void *ctx, const uint8_t *req, size_t req_len, rt_buf *reply,
                              char *errbuf, size_t errlen) {
  ing_ingester *ing = ctx;
  rt_arena *arena = rt_arena_create(req_len + ING_RPC_ARENA);
  if (!arena) {
    return RT_ENOMEM;
  }
  Ringtail__PushRequest *r;
  rt_err err = ing_decode_push(req, req_len, arena, &r);
  if (err) {
    snprintf(errbuf, errlen, "%s", err == RT_EPROTO ? "malformed Ringtail__PushRequest request"
                                                     : rt_strerror(err));
    rt_arena_destroy(arena);
    return err;
  }
  Ringtail__PushResponse resp;
  ringtail__push_response__init(&resp);
  err = ing_push(ing, r, &resp, arena);
  if (err) {
    snprintf(errbuf, errlen, "%s", rt_strerror(err));
  } else {
    err = ing_pack(&resp.base, reply);
  }
  rt_arena_destroy(arena);
  return err;
}
ING_HANDLER(ing_handle_select, Ringtail__SelectRequest, ringtail__select_request__unpack,
            Ringtail__SelectResponse, ringtail__select_response__init, ing_select)
ING_HANDLER(ing_handle_label_names, Ringtail__LabelsRequest, ringtail__labels_request__unpack,
            Ringtail__LabelsResponse, ringtail__labels_response__init, ing_label_names)
ING_HANDLER(ing_handle_label_values, Ringtail__LabelsRequest, ringtail__labels_request__unpack,
            Ringtail__LabelsResponse, ringtail__labels_response__init, ing_label_values)
ING_HANDLER(ing_handle_metadata, Ringtail__MetadataRequest, ringtail__metadata_request__unpack,
            Ringtail__MetadataResponse, ringtail__metadata_response__init, ing_metadata)
ING_HANDLER(ing_handle_user_stats, Ringtail__UserStatsRequest, ringtail__user_stats_request__unpack,
            Ringtail__UserStatsResponse, ringtail__user_stats_response__init, ing_user_stats)
ING_HANDLER(ing_handle_cardinality, Ringtail__CardinalityRequest,
            ringtail__cardinality_request__unpack, Ringtail__CardinalityResponse,
            ringtail__cardinality_response__init, ing_cardinality)
ING_HANDLER(ing_handle_delete_series, Ringtail__DeleteSeriesRequest,
            ringtail__delete_series_request__unpack, Ringtail__DeleteSeriesResponse,
            ringtail__delete_series_response__init, ing_delete_series)

/* The HA-pair arbiter (ing_ha.h) on the ingester's monotonic clock. */
static rt_err ing_handle_ha_elect(void *ctx, const uint8_t *req, size_t req_len, rt_buf *reply,
                                  char *errbuf, size_t errlen) {
  ing_ingester *ing = ctx;
  Ringtail__HaElectRequest *r = ringtail__ha_elect_request__unpack(NULL, req_len, req);
  if (!r) {
    snprintf(errbuf, errlen, "malformed Ringtail__HaElectRequest request");
    return RT_EPROTO;
  }
  rt_buf el = RT_BUF_INIT;
  bool refreshed = false;
  rt_err err = ing->ha ? ing_ha_elect(ing->ha, r->tenant, r->cluster, r->replica,
                                      r->failover_timeout_ms, (int64_t)(rt_mono_ns() / 1000000u),
                                      &el, &refreshed)
                       : RT_EUNAVAIL;
  ringtail__ha_elect_request__free_unpacked(r, NULL);
  if (err) {
    snprintf(errbuf, errlen, "%s", err == RT_EINVAL ? "HaElect needs a tenant, a cluster, a replica "
                                                      "and a positive failover timeout"
                                                    : rt_strerror(err));
  } else {
    Ringtail__HaElectResponse resp;
    ringtail__ha_elect_response__init(&resp);
    resp.elected = el.data ? el.data : (char *)"";
    resp.refreshed = refreshed;
    err = ing_pack(&resp.base, reply);
  }
  rt_buf_free(&el);
  return err;
}

static const rt_rpc_method ing_methods[] = {
    {"ingester.Push", ing_handle_push},
    {"ingester.Select", ing_handle_select},
    {"ingester.LabelNames", ing_handle_label_names},
    {"ingester.LabelValues", ing_handle_label_values},
    {"ingester.Metadata", ing_handle_metadata},
    {"ingester.UserStats", ing_handle_user_stats},
    {"ingester.Cardinality", ing_handle_cardinality},
    {"ingester.HaElect", ing_handle_ha_elect},
    {"ingester.DeleteSeries", ing_handle_delete_series},
};

rt_err ing_serve(ing_ingester *ing, const char *endpoint, int workers) {
  if (ing->rpc) {
    return RT_EEXIST;
  }
  if (!ing->ha) {
    rt_err e = ing_ha_create(!ing->cfg.ha_no_startup_wait, (int64_t)(rt_mono_ns() / 1000000u),
                             (ing_ha **)&ing->ha);
    if (e) {
      return e;
    }
  }
  rt_rpc_server *s;
  rt_err err = rt_rpc_server_create(endpoint, ing_methods, RT_ARRAY_LEN(ing_methods), ing,
                                    workers > 0 ? workers : 4, &s);
  if (err) {
    return err;
  }
  ing->rpc = s;
  return RT_OK;
}

void ing_serve_stop(ing_ingester *ing);
void ing_serve_stop(ing_ingester *ing) {
  if (ing->rpc) {
    rt_rpc_server_destroy(ing->rpc);
    ing->rpc = NULL;
  }
}
