/*
 * smf.h: the C API of simple-loader (libsmf.so, libsmf.a).
 *
 * Loads SMF modules (packed by `smf pack`) into the process, hands out their symbols and
 * replaces reloadable modules in place while they run. Build the library with
 * `cargo build --release -p smf-capi`; link with `-lsmf` (the static library also needs
 * `-lpthread -ldl -lm`, as every Rust static library does).
 *
 * Conventions, as dlopen's:
 * - A function that fails returns NULL (pointer results) or -1 (int results) and leaves a
 *   message for smf_error() on the calling thread. Messages name the file and the symbol
 *   involved, e.g. "/srv/lib.smf: no exported symbol `missing`".
 * - Every function may be called from any thread at any time, with the same registry from
 *   several threads at once. No Rust panic crosses into C: an internal error is reported as
 *   a failure with its message.
 * - NULL arguments are checked and reported as errors. Strings are NUL-terminated; paths
 *   are bytes as the operating system takes them (UTF-8 on Windows); symbol names must be
 *   UTF-8.
 * - Handles (smf_registry, smf_module, smf_options, smf_report, smf_pin_guard) are owned by the
 *   caller from the function that returns them until the matching free/release function.
 *   Using a handle after freeing it, or freeing it while another thread still uses it, is
 *   undefined behaviour, as for any C library.
 *
 * What the caller promises when loading or reloading (smf_load, smf_reload,
 * smf_reload_with_report): module code runs in this process with its full rights, starting
 * with the module's constructors and reload hooks, so the module must come from a source
 * the host trusts (or be checked by signature, smf_options_require_signature), and must be
 * a correct program. A module file must not be modified in place while its module is
 * loaded: replace it by writing a new file and renaming it over the old one, as compilers
 * and `smf pack` do. Constructors, reload hooks and the destructors smf_unload runs are
 * run while the registry is locked: they must not call back into the same registry. A pointer to a function must be called with
 * the function's actual C type.
 */
#ifndef SMF_H
#define SMF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A set of loaded modules, resolving imports across them; modules are cached by canonical
 * path. */
typedef struct smf_registry smf_registry;
/* One reference to a loaded module: it keeps the module mapped. */
typedef struct smf_module smf_module;
/* Settings for the loads of a registry. */
typedef struct smf_options smf_options;
/* What one reload did. */
typedef struct smf_report smf_report;
/* A thread pinned in a registry: old versions it may be running are not freed. */
typedef struct smf_pin_guard smf_pin_guard;

/* ---- Errors ------------------------------------------------------------------------ */

/* This thread's last error message, or NULL if no call on this thread failed since the
 * last smf_error() call; the error is cleared. The string is owned by the library and valid
 * until the next smf_error() call on the same thread, as dlerror's. */
const char *smf_error(void);

/* ---- Load options ------------------------------------------------------------------- */

/* New options with the defaults: module hash checked, no signature required, files mapped,
 * no debugger description, the default limits. Free with smf_options_free. */
smf_options *smf_options_new(void);
/* Frees options (NULL is ignored). Registries made from them are not affected. */
void smf_options_free(smf_options *options);
/* Whether to check the module hash before using a file (non-zero: yes, the default). */
int smf_options_set_verify_hash(smf_options *options, int verify);
/* Whether to map module files instead of reading them (non-zero: yes, the default).
 * Reloadable modules and signed loads are always read. */
int smf_options_set_map_file(smf_options *options, int map);
/* Whether to describe loaded modules to gdb and lldb (non-zero: yes; off by default). */
int smf_options_set_debugger(smf_options *options, int describe);
/* What a reload does when a function that an smf_current address or another module is
 * linked to changed type (both versions built with types: smf pack of objects compiled
 * with -g): SMF_TYPE_CHANGES_REFUSE (the default) fails the reload, nothing switches;
 * SMF_TYPE_CHANGES_REPORT lets it through and lists the change in the report's text. */
#define SMF_TYPE_CHANGES_REFUSE 0
#define SMF_TYPE_CHANGES_REPORT 1
int smf_options_set_type_changes(smf_options *options, int policy);

/* Bounds applied while parsing a module file; a file beyond one is refused. */
#define SMF_LIMIT_IMAGE_SIZE 0  /* bytes of the image in memory */
#define SMF_LIMIT_SECTIONS 1    /* entries of the section table (at most 2^32-1) */
#define SMF_LIMIT_SYMBOLS 2     /* entries of the symbol table */
#define SMF_LIMIT_IMPORTS 3     /* entries of the import table */
#define SMF_LIMIT_RELOCATIONS 4 /* entries of the relocation table */
#define SMF_LIMIT_NAME_LEN 5    /* bytes of the longest name (at most 2^32-1) */
/* Sets one SMF_LIMIT_* to value. */
int smf_options_set_limit(smf_options *options, int limit, uint64_t value);

/* Requires every module to carry a signature (`<module>.sig`, made by `smf sign`) by one
 * of the keys in the public key file key_file (made by `smf keygen`); may be called again
 * to trust more keys. The keys are read now. */
int smf_options_require_signature(smf_options *options, const char *key_file);

/* ---- Registries ---------------------------------------------------------------------- */

/* A new, empty registry with the default options. Free with smf_registry_free. */
smf_registry *smf_registry_new(void);
/* A new registry loading with a copy of options (options may be freed afterwards). */
smf_registry *smf_registry_new_with_options(const smf_options *options);
/* Frees a registry (NULL is ignored). Addresses from smf_current on it become invalid;
 * smf_module references stay valid and keep their modules mapped until released.
 * No other thread may be using the registry. */
void smf_registry_free(smf_registry *registry);

/* Defines name for the imports of modules loaded from now on; host definitions win over
 * every other source, and a later definition of the same name replaces an earlier one.
 * address must stay valid, as the object modules importing name expect, for as long as
 * any module loaded afterwards is loaded. Returns 0, or -1 on error. */
int smf_define(smf_registry *registry, const char *name, const void *address);

/* ---- Modules ------------------------------------------------------------------------- */

/* Loads the module file at path into registry, or returns the module already loaded from
 * the same canonical path; its imports are resolved against host definitions, the modules
 * loaded before it and the native libraries it names. Returns a new reference, owned by
 * the caller (release with smf_module_release), or NULL on error. The registry keeps the
 * module loaded until smf_unload or smf_registry_free, whatever the references do.
 * The caller promises what this header's opening comment says about module code. */
smf_module *smf_load(smf_registry *registry, const char *path);
/* A new reference to the version of path loaded now, or NULL if path is not loaded. */
smf_module *smf_get(smf_registry *registry, const char *path);
/* Releases one reference (NULL is ignored). The module is unmapped once the registry and
 * every reference, importer and handle have let go of it. */
void smf_module_release(smf_module *module);

/* The address of the exported symbol name of this version of module (a function or data),
 * or NULL if it exports no such symbol. Valid while the caller holds the reference:
 * after a reload it is still the old version's code and data; use smf_current to follow
 * reloads. */
void *smf_sym(smf_module *module, const char *name);
/* As smf_sym, but NULL with an error naming both types if the module records a type for
 * name and it is not type, written as docs/FORMAT.md's "Text form" says: C's scalar names
 * or i8..i64, u8..u64, f32, f64, bool; "*T" for a pointer ("*void" accepts any pointer);
 * "struct TAG"; "fn(int, *char) -> long" for a function. A symbol the module records no
 * type for (built without -g) is not checked. */
void *smf_sym_typed(smf_module *module, const char *name, const char *type);
/* Writes the type the module records for its export name, in the text form above and
 * NUL-terminated, to buffer (at most size bytes, cut short if longer). Returns the length
 * of the whole text, 0 if the module records no type for it, or -1 on error (no such
 * export). */
long smf_type_of(smf_module *module, const char *name, char *buffer, size_t size);

/* The module's name in messages: its path. Owned by the module reference. */
const char *smf_module_name(const smf_module *module);
/* Start and length in bytes of the module's image in memory. */
void *smf_module_base(const smf_module *module);
size_t smf_module_size(const smf_module *module);
/* 1 if the module was packed --reloadable, 0 if not, -1 on error. */
int smf_module_is_reloadable(const smf_module *module);
/* Writes the module's 32-byte BLAKE3 module hash to hash. */
int smf_module_hash(const smf_module *module, uint8_t *hash);

/* ---- Reload -------------------------------------------------------------------------- */

/* An address that always calls the current version of the function name of the module
 * loaded from path, across reloads (the module must be packed --reloadable for reloads to
 * be possible). Stable: the same address for the same path and name until
 * smf_registry_free, even after the module is unloaded (it then calls the last version).
 * Cast it to the function's C type. NULL on error: not loaded, no such export, not a
 * function. A call through it is protected from the version it reaches being freed by a
 * concurrent reload only while the calling thread is pinned (smf_pin); unpinned calls are
 * safe when no reload runs concurrently, or when the old versions' code stays valid (see
 * smf_pin). */
void *smf_current(smf_registry *registry, const char *path, const char *name);
/* As smf_current, checking first, as smf_sym_typed does, that the version loaded now
 * records the type type for name (or none). Reloads then keep it: by default a new version
 * that changes the type is refused (smf_options_set_type_changes). */
void *smf_current_typed(smf_registry *registry, const char *path, const char *name, const char *type);

/* Replaces the module loaded from path by the file's current content (a no-op if the
 * content is the running version's). The new version is loaded, linked and checked first;
 * on any error nothing changes and the old version keeps running. Then its data that both
 * versions define is carried over, calls through smf_current and from other modules reach
 * the new code, and the old version is freed once nothing can reach it.
 * Returns 0, or -1 on error. The caller promises what the opening comment says about
 * module code. */
int smf_reload(smf_registry *registry, const char *path);

/* As smf_reload, returning what the reload did (owned by the caller, free with
 * smf_report_free), or NULL on error. */
smf_report *smf_reload_with_report(smf_registry *registry, const char *path);

#define SMF_REPORT_ADDED 0   /* exported symbols the new version has and the old did not */
#define SMF_REPORT_REMOVED 1 /* exported symbols the old version had and the new does not */
#define SMF_REPORT_CHANGED 2 /* exported symbols of both whose behaviour may differ */
#define SMF_REPORT_KEPT 3    /* data symbols whose values were carried over */
#define SMF_REPORT_RESET 4   /* data symbols that start fresh (smf_report_reset_reason) */
/* The version now running: 1 at first load, one more at each reload that changed
 * something; 0 on error. */
uint32_t smf_report_version(const smf_report *report);
/* 1 if the file was the running version (nothing done), 0 if not, -1 on error. */
int smf_report_unchanged(const smf_report *report);
/* The number of names in list SMF_REPORT_* (0 on error). */
size_t smf_report_count(const smf_report *report, int list);
/* The index-th name of list SMF_REPORT_*; owned by the report. */
const char *smf_report_name(const smf_report *report, int list, size_t index);
/* Why the index-th symbol of SMF_REPORT_RESET starts fresh; owned by the report. */
const char *smf_report_reset_reason(const smf_report *report, size_t index);
/* The report as `smf dev` prints it, several lines; owned by the report. */
const char *smf_report_text(const smf_report *report);
/* A new reference to the module now running (release with smf_module_release). */
smf_module *smf_report_module(const smf_report *report);
/* Frees a report (NULL is ignored). */
void smf_report_free(smf_report *report);

/* Removes the module loaded from path from the registry. Returns 1 if a module was
 * removed, 0 if none was loaded from path, -1 on error. Its memory is released once no
 * reference, importer, smf_current address of a live registry or pinned thread reaches it. */
int smf_unload(smf_registry *registry, const char *path);

/* Pins the calling thread in registry until smf_unpin: no version of the registry's
 * modules the thread may be running is freed meanwhile. Take a pin around calls through
 * smf_current addresses when other threads may reload. A pin belongs to the thread that
 * made it: smf_unpin on another thread fails. Pins may nest. */
smf_pin_guard *smf_pin(smf_registry *registry);
/* Ends a pin made on this thread. Returns 0, or -1 on error (the pin is then kept). */
int smf_unpin(smf_pin_guard *pin);
/* Frees the old versions no pinned thread can be running any more (reloads and unloads
 * do it too). */
int smf_collect(smf_registry *registry);

/* Resolves name as an import would be (host definitions, then modules in load order);
 * a function of a reloadable module resolves to the address that follows reloads. Valid
 * while the defining module stays loaded in registry. NULL if nothing defines name. */
void *smf_resolve(smf_registry *registry, const char *name);

#ifdef __cplusplus
}
#endif

#endif /* SMF_H */
