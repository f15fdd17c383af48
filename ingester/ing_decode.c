/* ing_decode.c - ringtail.PushRequest bytes -> message tree, with protobuf-c.
 *
 * The whole tree (messages, arrays, NUL-terminated string copies) is allocated from the
 * request's arena through rt_arena_pb_allocator(), so it is released in one call with the
 * arena and nothing is freed piecemeal. */
#include "ingester/ing_int.h"

rt_err ing_decode_push(const uint8_t *data, size_t len, rt_arena *arena, Ringtail__PushRequest **out) {
  ProtobufCAllocator al = rt_arena_pb_allocator(arena);
  *out = ringtail__push_request__unpack(&al, len, len ? data : (const uint8_t *)"");
  return *out ? RT_OK : RT_EPROTO;
}
