/* reload.h - files that change under a running process: the runtime-config (per-tenant limits)
 * and the workspaces file. Each registers a reload function; it runs on SIGHUP
 * (rt_reload_all, from the main thread) and when the watcher sees its file change (size,
 * modification time or inode, checked every -runtime-config.reload-period).
 *
 * A reload function replaces its state only when the new file is valid; on error the old state
 * stays and the error is logged and counted (ringtail_config_last_reload_successful{config}). */
#ifndef RT_RELOAD_H
#define RT_RELOAD_H

#include "common/rt.h"

typedef rt_err (*rt_reload_fn)(void *ctx, char *err, size_t errlen);

/* Registers `fn` for the file `path` under `name` ("runtime-config", "workspaces"). Borrows
 * name; copies path. */
rt_err rt_reload_register(const char *name, const char *path, rt_reload_fn fn, void *ctx);
/* Removes every registration with this ctx. */
void rt_reload_unregister(void *ctx);
/* Reloads every registered file now (SIGHUP). Returns the number of failures. */
int rt_reload_all(void);
/* Starts / stops the watcher thread (period_ms <= 0: no watcher). */
rt_err rt_reload_start(int64_t period_ms);
void rt_reload_stop(void);

#endif
