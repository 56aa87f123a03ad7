/*
 * stdo: the native half of vs-stdo.
 *
 * VapourSynth namespaces can only be added by native plugins, so this file registers `core.stdo` and hands
 * the rest to the Python package `vs_stdo`, which builds every graph with ordinary VapourSynth calls:
 *
 *   Upscale(clip, bundle, ...)  checks that the clip has a constant format, keeps it as the hand-off of this
 *                               thread and calls vs_stdo.filter.plugin.build(bundle, {optional args}), which
 *                               takes the clip through InternalInput, builds the graph and gives its result
 *                               back through InternalOutput; that result is Upscale's.
 *   InternalInput()             the clip of the Upscale call being built on this thread (internal).
 *   InternalOutput(clip)        the finished graph of that call (internal).
 *   InternalFrames(clip, engine) the frame filter: an RGBS or GRAYS clip through the engine that Python
 *                               registered under the key `engine` (vs_stdo.filter.graph.claim_engine), each
 *                               frame filled by engine.process(n, src_planes, dst_planes, src_stride,
 *                               dst_stride), which returns the routing props set on it (internal).
 *   Version()                   pyproject.toml's version.
 *
 * Python cannot turn a C VSNode* into a vs.VideoNode, hence the hand-off. It lives on Upscale's stack and in
 * a thread-local pointer only while build runs; the Internal functions refuse to work outside it (called from
 * a script), on another core than the call's, and a second InternalOutput; Upscale refuses to start while
 * another call is being built on this thread. Every failure is a vs.Error; every node is freed on every path.
 *
 * The GIL is taken only while Python runs. Every CPython call is checked: the first failure stops
 * the work and its exception's message becomes mapSetError at create time or setFilterError during
 * rendering, never a crash. STDO_VERSION comes from pyproject.toml through setup.py.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdio.h>
#include <string.h>

#include "VapourSynth4.h"
#include "VSHelper4.h"

#if !defined(STDO_VERSION) || !defined(STDO_VERSION_MAJOR) || !defined(STDO_VERSION_MINOR)
#error "build with setup.py (pip install .): it passes STDO_VERSION from pyproject.toml"
#endif
#define ERR_LEN 1024

typedef struct {
    VSNode *node;      /* RGBS (or GRAYS) input */
    VSVideoInfo vi;    /* the same format, the engine's output size */
    PyObject *engine;  /* vs_stdo.filter.engine.Engine */
} UpscaleData;

/* The Upscale call being built on this thread: its core, its input (borrowed from upscaleCreate) and, once
 * Python gave it back, its result (owned). */
typedef struct {
    VSCore *core;
    VSNode *input;
    VSNode *result;
} HandOff;

static _Thread_local HandOff *building = NULL;

/* Clear the current Python exception; copy its text into buf unless buf already holds an earlier
 * error (the first one is the cause). Caller holds the GIL. */
static void take_python_error(char *buf, size_t len, const char *prefix) {
    PyObject *exc = PyErr_GetRaisedException();
    const char *text = NULL;
    PyObject *str = exc ? PyObject_Str(exc) : NULL;
    if (str)
        text = PyUnicode_AsUTF8AndSize(str, NULL);
    if (!buf[0])
        snprintf(buf, len, "%s%s", prefix, text && *text ? text : "unknown Python error");
    Py_XDECREF(str);
    Py_XDECREF(exc);
    PyErr_Clear();
}

/* Bytes from VapourSynth as a Python str, or NULL with a ValueError that names where they came from
 * (`what`) and keeps the decoder's own message. */
static PyObject *utf8_to_str(const char *data, int size, const char *what) {
    PyObject *s = PyUnicode_DecodeUTF8(data, size, "strict");
    if (!s) {
        PyObject *cause = PyErr_GetRaisedException();
        PyErr_Format(PyExc_ValueError, "%s is not valid UTF-8 (%S)", what, cause);
        Py_DECREF(cause);
    }
    return s;
}

/* ---------- per-frame work ---------- */

static PyObject *plane_views(const VSFrame *f, VSFrame *w, const VSAPI *vsapi, int height) {
    int count = vsapi->getVideoFrameFormat(w ? w : f)->numPlanes;
    PyObject *planes = PyTuple_New(count);
    for (int p = 0; planes && p < count; p++) {
        Py_ssize_t size = vsapi->getStride(w ? w : f, p) * (Py_ssize_t)height;
        PyObject *view = w ? PyMemoryView_FromMemory((char *)vsapi->getWritePtr(w, p), size, PyBUF_WRITE)
                           : PyMemoryView_FromMemory((char *)vsapi->getReadPtr(f, p), size, PyBUF_READ);
        if (!view || PyTuple_SetItem(planes, p, view) < 0) { /* SetItem steals view, even on failure */
            Py_DECREF(planes);
            return NULL;
        }
    }
    return planes;
}

/* Release the memoryviews so Python code can never touch frame memory after we free it, and drop
 * the tuple. Every view is released even after a failure (e.g. a buffer still exported); returns 0
 * with the first failure's exception set. */
static int release_views(PyObject *planes) {
    PyObject *first = NULL;
    if (!planes)
        return 1;
    for (Py_ssize_t p = 0; p < PyTuple_Size(planes); p++) {
        PyObject *r = PyObject_CallMethod(PyTuple_GetItem(planes, p), "release", NULL);
        if (!r && !first)
            first = PyErr_GetRaisedException();
        PyErr_Clear();
        Py_XDECREF(r);
    }
    Py_DECREF(planes);
    if (first)
        PyErr_SetRaisedException(first);
    return !first;
}

/* 0 with a ValueError when a VSMap setter refused key (its status is nonzero), else 1. */
static int map_set_ok(int status, const char *key) {
    if (status)
        PyErr_Format(PyExc_ValueError, "%s cannot be stored (invalid name or mixed types)", key);
    return !status;
}

/* Set engine.process's returned {name: str | int | [float]} on the frame's props, replacing what is
 * there; 0 with an exception set on the first failure. Holds the GIL. */
static int set_props(PyObject *dict, VSMap *props, const VSAPI *vsapi) {
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    if (!PyDict_Check(dict)) {
        PyErr_SetString(PyExc_TypeError, "engine.process must return a dict of frame props");
        return 0;
    }
    while (PyDict_Next(dict, &pos, &key, &value)) {
        const char *k = PyUnicode_AsUTF8AndSize(key, NULL);
        if (!k)
            return 0;
        vsapi->mapDeleteKey(props, k);
        if (PyUnicode_Check(value)) {
            Py_ssize_t len;
            const char *s = PyUnicode_AsUTF8AndSize(value, &len);
            if (!s || !map_set_ok(vsapi->mapSetData(props, k, s, (int)len, dtUtf8, maReplace), k))
                return 0;
        } else if (PyLong_Check(value)) {
            int64_t v = PyLong_AsLongLong(value);
            if ((v == -1 && PyErr_Occurred()) || !map_set_ok(vsapi->mapSetInt(props, k, v, maReplace), k))
                return 0;
        } else if (PyList_Check(value)) {
            for (Py_ssize_t i = 0; i < PyList_Size(value); i++) {
                double v = PyFloat_AsDouble(PyList_GetItem(value, i));
                if ((v == -1.0 && PyErr_Occurred()) || !map_set_ok(vsapi->mapSetFloat(props, k, v, maAppend), k))
                    return 0;
            }
        } else {
            PyErr_Format(PyExc_TypeError, "frame prop %s has an unsupported type", k);
            return 0;
        }
    }
    return 1;
}

static const VSFrame *VS_CC upscaleGetFrame(int n, int activationReason, void *instanceData, void **frameData,
                                            VSFrameContext *frameCtx, VSCore *core, const VSAPI *vsapi) {
    UpscaleData *d = (UpscaleData *)instanceData;
    if (activationReason == arInitial) {
        vsapi->requestFrameFilter(n, d->node, frameCtx);
        return NULL;
    }
    if (activationReason != arAllFramesReady)
        return NULL;

    const VSFrame *src = vsapi->getFrameFilter(n, d->node, frameCtx);
    VSFrame *dst = vsapi->newVideoFrame(&d->vi.format, d->vi.width, d->vi.height, src, core);
    char err[ERR_LEN] = "";

    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *srcs = plane_views(src, NULL, vsapi, vsapi->getFrameHeight(src, 0));
    PyObject *dsts = srcs ? plane_views(NULL, dst, vsapi, d->vi.height) : NULL;
    PyObject *r = NULL;
    if (dsts)
        r = PyObject_CallMethod(d->engine, "process", "iOOnn", n, srcs, dsts,
                                (Py_ssize_t)vsapi->getStride(src, 0), (Py_ssize_t)vsapi->getStride(dst, 0));
    if (!r || !set_props(r, vsapi->getFramePropertiesRW(dst), vsapi))
        take_python_error(err, sizeof err, "Upscale: ");
    Py_XDECREF(r);
    if (!release_views(srcs))
        take_python_error(err, sizeof err, "Upscale: ");
    if (!release_views(dsts))
        take_python_error(err, sizeof err, "Upscale: ");
    PyGILState_Release(gil);

    vsapi->freeFrame(src);
    if (err[0]) {
        vsapi->freeFrame(dst);
        vsapi->setFilterError(err, frameCtx);
        return NULL;
    }
    return dst;
}

static void VS_CC upscaleFree(void *instanceData, VSCore *core, const VSAPI *vsapi) {
    UpscaleData *d = (UpscaleData *)instanceData;
    vsapi->freeNode(d->node);
    if (d->engine && Py_IsInitialized()) {
        PyGILState_STATE gil = PyGILState_Ensure();
        Py_DECREF(d->engine);
        PyGILState_Release(gil);
    }
    free(d);
}

/* ---------- create ---------- */

/* Put value (consumed) into dict under key; 0 with an exception set when value is NULL or the
 * insertion fails. */
static int dict_take(PyObject *dict, const char *key, PyObject *value) {
    int ok = value && PyDict_SetItemString(dict, key, value) == 0;
    Py_XDECREF(value);
    return ok;
}

/* The optional arguments that were given, as a dict {name: int | float | str}, for Python to check
 * (vs_stdo/filter/options.py owns their names, defaults and checks). NULL with an exception set on the
 * first failure. */
static PyObject *args_to_dict(const VSMap *in, const VSAPI *vsapi) {
    PyObject *dict = PyDict_New();
    int keys = vsapi->mapNumKeys(in);
    for (int i = 0; dict && i < keys; i++) {
        const char *key = vsapi->mapGetKey(in, i);
        PyObject *value;
        if (!strcmp(key, "clip") || !strcmp(key, "bundle"))
            continue;
        switch (vsapi->mapGetType(in, key)) {
        case ptInt: value = PyLong_FromLongLong(vsapi->mapGetInt(in, key, 0, NULL)); break;
        case ptFloat: value = PyFloat_FromDouble(vsapi->mapGetFloat(in, key, 0, NULL)); break;
        case ptData:
            value = utf8_to_str(vsapi->mapGetData(in, key, 0, NULL), vsapi->mapGetDataSize(in, key, 0, NULL), key);
            break;
        default: continue;
        }
        if (!dict_take(dict, key, value))
            Py_CLEAR(dict);
    }
    return dict;
}

/* Run vs_stdo's build for the call in `h` (this thread's hand-off while it runs); fills err on failure. */
static void build_in_python(HandOff *h, const VSMap *in, const VSAPI *vsapi, char *err) {
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *module = PyImport_ImportModule("vs_stdo.filter.plugin");
    PyObject *args = module ? args_to_dict(in, vsapi) : NULL;
    PyObject *bundle = args ? utf8_to_str(vsapi->mapGetData(in, "bundle", 0, NULL),
                                          vsapi->mapGetDataSize(in, "bundle", 0, NULL), "bundle") : NULL;
    PyObject *r = NULL;
    if (bundle) {
        building = h;
        r = PyObject_CallMethod(module, "build", "OO", bundle, args);
        building = NULL;
    }
    if (!r)
        take_python_error(err, ERR_LEN, module ? "Upscale: " : "Upscale: cannot import vs_stdo: ");
    Py_XDECREF(r);
    Py_XDECREF(bundle);
    Py_XDECREF(args);
    Py_XDECREF(module);
    PyGILState_Release(gil);
}

static void VS_CC upscaleCreate(const VSMap *in, VSMap *out, void *userData, VSCore *core, const VSAPI *vsapi) {
    char err[ERR_LEN] = "";
    HandOff h = {core, vsapi->mapGetNode(in, "clip", 0, NULL), NULL};

    if (!vsh_isConstantVideoFormat(vsapi->getVideoInfo(h.input)))
        snprintf(err, ERR_LEN, "Upscale: the clip must have a constant format and size, but it has a variable "
                               "format or frame size (e.g. from std.Splice(mismatch=True)); convert it first, e.g. "
                               "with resize.Bicubic(format=..., width=..., height=...)");
    else if (building)
        snprintf(err, ERR_LEN, "Upscale: called while another stdo.Upscale call on this thread builds its graph; "
                               "call it once that one has returned");
    else if (!Py_IsInitialized())
        snprintf(err, ERR_LEN, "Upscale: Python is not running in this process; stdo.Upscale is built by the "
                               "vs_stdo package, so call it from a VapourSynth script or from Python");
    else
        build_in_python(&h, in, vsapi, err);
    if (!err[0] && !h.result)
        snprintf(err, ERR_LEN, "Upscale: internal error: vs_stdo returned without handing back a clip");
    vsapi->freeNode(h.input);
    if (err[0]) {
        vsapi->freeNode(h.result); /* NULL-safe */
        vsapi->mapSetError(out, err);
    } else {
        vsapi->mapConsumeNode(out, "clip", h.result, maAppend);
    }
}

/* The call being built on this thread for `core`, or NULL with out's error set: the Internal functions
 * work only inside Upscale's hand-off. */
static HandOff *hand_off(const char *name, VSMap *out, VSCore *core, const VSAPI *vsapi) {
    char msg[ERR_LEN];
    if (!building)
        snprintf(msg, sizeof msg, "%s: this function is internal to stdo.Upscale (it hands clips between the "
                                  "plugin and the vs_stdo package while Upscale builds its graph); call "
                                  "stdo.Upscale instead", name);
    else if (building->core != core)
        snprintf(msg, sizeof msg, "%s: stdo.Upscale was called on another core than Python's current one "
                                  "(vs.core), which builds its graph; call it from a VapourSynth script or "
                                  "from Python", name);
    else
        return building;
    vsapi->mapSetError(out, msg);
    return NULL;
}

static void VS_CC inputCreate(const VSMap *in, VSMap *out, void *userData, VSCore *core, const VSAPI *vsapi) {
    HandOff *h = hand_off("InternalInput", out, core, vsapi);
    if (h)
        vsapi->mapSetNode(out, "clip", h->input, maAppend);
}

static void VS_CC outputCreate(const VSMap *in, VSMap *out, void *userData, VSCore *core, const VSAPI *vsapi) {
    HandOff *h = hand_off("InternalOutput", out, core, vsapi);
    if (h && h->result)
        vsapi->mapSetError(out, "InternalOutput: this Upscale call has already handed back its clip");
    else if (h)
        h->result = vsapi->mapGetNode(in, "clip", 0, NULL);
}

/* Ask vs_stdo.filter.graph.claim_engine for the engine registered under key, for frames of vi; fills d's
 * engine and output size, or err. */
static void claim_engine(int64_t key, const VSVideoInfo *vi, UpscaleData *d, char *err) {
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *module = PyImport_ImportModule("vs_stdo.filter.graph");
    PyObject *r = module ? PyObject_CallMethod(module, "claim_engine", "Liii", (long long)key, vi->format.numPlanes,
                                               vi->width, vi->height) : NULL;
    PyObject *engine;
    if (r && PyArg_ParseTuple(r, "Oii", &engine, &d->vi.width, &d->vi.height)) {
        Py_INCREF(engine);
        d->engine = engine;
    } else {
        take_python_error(err, ERR_LEN, "InternalFrames: ");
    }
    Py_XDECREF(r);
    Py_XDECREF(module);
    PyGILState_Release(gil);
}

static void VS_CC framesCreate(const VSMap *in, VSMap *out, void *userData, VSCore *core, const VSAPI *vsapi) {
    char err[ERR_LEN] = "";
    VSNode *node = vsapi->mapGetNode(in, "clip", 0, NULL);
    const VSVideoInfo *vi = vsapi->getVideoInfo(node);
    const VSVideoFormat *f = &vi->format;
    UpscaleData *d = NULL;

    if (!vsh_isConstantVideoFormat(vi) || (f->colorFamily != cfRGB && f->colorFamily != cfGray) ||
        f->sampleType != stFloat || f->bitsPerSample != 32)
        snprintf(err, ERR_LEN, "InternalFrames: takes RGBS or GRAYS of a constant size only; it is internal to "
                               "stdo.Upscale, which converts any clip: call stdo.Upscale instead");
    else if (!Py_IsInitialized())
        snprintf(err, ERR_LEN, "InternalFrames: Python is not running in this process");
    else if ((d = (UpscaleData *)calloc(1, sizeof *d)) == NULL)
        snprintf(err, ERR_LEN, "InternalFrames: out of memory");
    else {
        d->vi = *vi;
        claim_engine(vsapi->mapGetInt(in, "engine", 0, NULL), vi, d, err);
    }
    if (err[0]) {
        free(d);
        vsapi->freeNode(node);
        vsapi->mapSetError(out, err);
        return;
    }
    d->node = node;
    VSFilterDependency deps[] = {{d->node, rpStrictSpatial}};
    VSNode *filter = vsapi->createVideoFilter2("Upscale", &d->vi, upscaleGetFrame, upscaleFree, fmParallel, deps, 1,
                                               d, core);
    if (filter) {
        vsapi->mapConsumeNode(out, "clip", filter, maAppend);
    } else { /* VapourSynth does not free what it refused */
        upscaleFree(d, core, vsapi);
        vsapi->mapSetError(out, "InternalFrames: VapourSynth refused the filter's output format or size");
    }
}

static void VS_CC versionCreate(const VSMap *in, VSMap *out, void *userData, VSCore *core, const VSAPI *vsapi) {
    vsapi->mapSetData(out, "version", STDO_VERSION, -1, dtUtf8, maReplace);
}

VS_EXTERNAL_API(void) VapourSynthPluginInit2(VSPlugin *plugin, const VSPLUGINAPI *vspapi) {
    vspapi->configPlugin("com.vs-stdo.stdo", "stdo", "STDO content-overfitted video super-resolution",
                         VS_MAKE_VERSION(STDO_VERSION_MAJOR, STDO_VERSION_MINOR), VAPOURSYNTH_API_VERSION, 0, plugin);
    /* Upscale(clip, bundle[, route, device, fp16, pad, batch, bf16]): the names and types that
     * vs_stdo/filter/options.py owns (a test compares them); docs/filter.md has the table. */
    vspapi->registerFunction("Upscale",
                             "clip:vnode;bundle:data;route:data:opt;device:data:opt;fp16:int:opt;pad:int:opt;batch:int:opt;"
                             "bf16:int:opt;",
                             "clip:vnode;", upscaleCreate, NULL, plugin);
    vspapi->registerFunction("Version", "", "version:data;", versionCreate, NULL, plugin);
    /* Internal to Upscale's hand-off (see the top of this file): errors when called from a script. */
    vspapi->registerFunction("InternalInput", "", "clip:vnode;", inputCreate, NULL, plugin);
    vspapi->registerFunction("InternalOutput", "clip:vnode;", "", outputCreate, NULL, plugin);
    vspapi->registerFunction("InternalFrames", "clip:vnode;engine:int;", "clip:vnode;", framesCreate, NULL, plugin);
}
