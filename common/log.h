/* log.h - logfmt logging to stderr: ts=... level=... msg="..." key=value ... */
#ifndef RT_LOG_H
#define RT_LOG_H

typedef enum rt_log_level { RT_LOG_DEBUG, RT_LOG_INFO, RT_LOG_WARN, RT_LOG_ERROR } rt_log_level;

void rt_log_set_level(rt_log_level lvl);
/* rt_log_set_level_name: "debug", "info", "warn", "error"; returns 0 on success. */
int rt_log_set_level_name(const char *name);

/* `kv` is a printf format for the key=value pairs after msg (may be NULL or "").
 * String values that may hold spaces should be formatted with %s inside quotes by the caller
 * or passed through rt_log_quote(). */
void rt_log(rt_log_level lvl, const char *component, const char *msg, const char *kv, ...)
    __attribute__((format(printf, 4, 5)));

#define rt_debug(comp, msg, ...) rt_log(RT_LOG_DEBUG, comp, msg, __VA_ARGS__)
#define rt_info(comp, msg, ...) rt_log(RT_LOG_INFO, comp, msg, __VA_ARGS__)
#define rt_warn(comp, msg, ...) rt_log(RT_LOG_WARN, comp, msg, __VA_ARGS__)
#define rt_error(comp, msg, ...) rt_log(RT_LOG_ERROR, comp, msg, __VA_ARGS__)

#endif
