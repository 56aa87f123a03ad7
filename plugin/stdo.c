/*
 * stdo: the native half of vs-stdo.
 *
 * VapourSynth namespaces can only be added by native plugins, so this file registers
 * `stdo.Upscale` and `stdo.Version` and hands everything else to the Python package `vs_stdo`:
 *
 *   create   -> vs_stdo.filter.plugin.prepare(...) returns an engine plus the resize calls that bring
 *               the clip to RGBS (GRAYS for a luma bundle) and back; we invoke those calls and put
 *               our filter between them.
 *   getFrame -> engine.process(n, src_planes, dst_planes, src_stride, dst_stride) fills the frame
 *               and returns the routing props we set on it.
 *   free     -> drops the engine.
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
#define MAX_CLIPS 4    /* clips a call may get under one call's clip argument */

typedef struct {
    VSNode *node;      /* RGBS (or GRAYS) input, already converted */
    VSVideoInfo vi;    /* the same format, scaled */
    PyObject *engine;  /* vs_stdo.filter.engine.Engine */
} UpscaleData;

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

/* ---------- create: Python plans, we wire the graph ---------- */

/* Put value (consumed) into dict under key; 0 with an exception set when value is NULL or the
 * insertion fails. */
static int dict_take(PyObject *dict, const char *key, PyObject *value) {
    int ok = value && PyDict_SetItemString(dict, key, value) == 0;
    Py_XDECREF(value);
    return ok;
}

/* Frame props of frame 0 as a Python dict of int/float/str (what the colour calls needs); other
 * types are skipped. NULL with an exception set on the first failure. */
static PyObject *props_to_dict(const VSMap *props, const VSAPI *vsapi) {
    PyObject *dict = PyDict_New();
    int keys = vsapi->mapNumKeys(props);
    for (int i = 0; dict && i < keys; i++) {
        const char *key = vsapi->mapGetKey(props, i);
        PyObject *value;
        switch (vsapi->mapGetType(props, key)) {
        case ptInt: value = PyLong_FromLongLong(vsapi->mapGetInt(props, key, 0, NULL)); break;
        case ptFloat: value = PyFloat_FromDouble(vsapi->mapGetFloat(props, key, 0, NULL)); break;
        case ptData:
            if (vsapi->mapGetDataTypeHint(props, key, 0, NULL) != dtUtf8)
                continue;
            char what[128];
            snprintf(what, sizeof what, "frame 0's property '%s', tagged as text,", key);
            value = utf8_to_str(vsapi->mapGetData(props, key, 0, NULL), vsapi->mapGetDataSize(props, key, 0, NULL),
                                what);
            break;
        default: continue;
        }
        if (!dict_take(dict, key, value))
            Py_CLEAR(dict);
    }
    return dict;
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

/* One call Python prepared: (namespace, function, clip_argument_name, {name: int|float|str|[int]|[calls]}).
 * An argument that is a list of calls is a clip: the input clip after those calls. */
typedef struct {
    char ns[32], name[64], clip_key[32];
    VSMap *args;
} CallSpec;

/* Store one call argument (int, float, str or list of ints) in map; 0 with an exception set on failure. */
static int set_call_arg(VSMap *map, PyObject *key, PyObject *value, const VSAPI *vsapi) {
    const char *k = PyUnicode_AsUTF8AndSize(key, NULL);
    if (!k)
        return 0;
    if (PyLong_Check(value)) {
        int64_t v = PyLong_AsLongLong(value);
        return !(v == -1 && PyErr_Occurred()) && map_set_ok(vsapi->mapSetInt(map, k, v, maAppend), k);
    }
    if (PyFloat_Check(value)) {
        double v = PyFloat_AsDouble(value);
        return !(v == -1.0 && PyErr_Occurred()) && map_set_ok(vsapi->mapSetFloat(map, k, v, maAppend), k);
    }
    if (PyUnicode_Check(value)) {
        Py_ssize_t len;
        const char *s = PyUnicode_AsUTF8AndSize(value, &len);
        return s && map_set_ok(vsapi->mapSetData(map, k, s, (int)len, dtUtf8, maAppend), k);
    }
    if (PyList_Check(value)) {
        for (Py_ssize_t i = 0; i < PyList_Size(value); i++) {
            int64_t v = PyLong_AsLongLong(PyList_GetItem(value, i));
            if ((v == -1 && PyErr_Occurred()) || !map_set_ok(vsapi->mapSetInt(map, k, v, maAppend), k))
                return 0;
        }
        return 1;
    }
    PyErr_Format(PyExc_TypeError, "call argument %s has an unsupported type", k);
    return 0;
}

static VSNode *apply_call(VSNode *node, CallSpec *call, VSCore *core, const VSAPI *vsapi, char *err);

/* The input clip after a list of calls, stored under key k of map; 0 with an exception set on failure. */
static int set_call_clip(VSMap *map, const char *k, PyObject *calls, VSNode *input, VSCore *core,
                         const VSAPI *vsapi);

static int call_from_python(PyObject *spec, CallSpec *call, VSNode *input, VSCore *core,
                                 const VSAPI *vsapi) {
    PyObject *kwargs;
    const char *ns, *name, *clip_key;
    if (!PyArg_ParseTuple(spec, "sssO!", &ns, &name, &clip_key, &PyDict_Type, &kwargs))
        return 0;
    snprintf(call->ns, sizeof call->ns, "%s", ns);
    snprintf(call->name, sizeof call->name, "%s", name);
    snprintf(call->clip_key, sizeof call->clip_key, "%s", clip_key);
    call->args = vsapi->createMap();
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(kwargs, &pos, &key, &value)) {
        if (PyList_Check(value) && PyList_Size(value) && PyTuple_Check(PyList_GetItem(value, 0))) {
            const char *k = PyUnicode_AsUTF8AndSize(key, NULL);
            if (!k || !set_call_clip(call->args, k, value, input, core, vsapi))
                return 0;
        } else if (!set_call_arg(call->args, key, value, vsapi)) {
            return 0;
        }
    }
    return 1;
}

static int set_call_clip(VSMap *map, const char *k, PyObject *calls, VSNode *input, VSCore *core,
                         const VSAPI *vsapi) {
    VSNode *clip = vsapi->addNodeRef(input);
    char err[ERR_LEN] = "";
    for (Py_ssize_t i = 0; clip && i < PyList_Size(calls); i++) {
        CallSpec sub = {0};
        if (!call_from_python(PyList_GetItem(calls, i), &sub, input, core, vsapi)) {
            vsapi->freeNode(clip);
            clip = NULL;
        } else {
            clip = apply_call(clip, &sub, core, vsapi, err);
            if (!clip)  /* the call error prefix is added again by the caller */
                PyErr_SetString(PyExc_ValueError, strncmp(err, "Upscale: ", 9) ? err : err + 9);
        }
        if (sub.args)
            vsapi->freeMap(sub.args);
    }
    if (!clip)
        return 0;
    vsapi->mapConsumeNode(map, k, clip, maAppend);
    return 1;
}

/* Invoke one call on node (consumed); returns the new node or NULL with err filled. The node
 * goes first under its argument, before clips Python put there. */
static VSNode *apply_call(VSNode *node, CallSpec *call, VSCore *core, const VSAPI *vsapi, char *err) {
    VSPlugin *plugin = vsapi->getPluginByNamespace(call->ns, core);
    if (!plugin) {
        snprintf(err, ERR_LEN, "Upscale: VapourSynth plugin namespace '%s' is missing", call->ns);
        vsapi->freeNode(node);
        return NULL;
    }
    int others = vsapi->mapNumElements(call->args, call->clip_key);
    if (others > MAX_CLIPS) {
        snprintf(err, ERR_LEN, "Upscale: internal error: the calls put %d clips under %s.%s's %s", others,
                 call->ns, call->name, call->clip_key);
        vsapi->freeNode(node);
        return NULL;
    }
    VSNode *given[MAX_CLIPS];
    for (int i = 0; i < others; i++)
        given[i] = vsapi->mapGetNode(call->args, call->clip_key, i, NULL);
    vsapi->mapDeleteKey(call->args, call->clip_key);
    vsapi->mapConsumeNode(call->args, call->clip_key, node, maAppend);
    for (int i = 0; i < others; i++)
        vsapi->mapConsumeNode(call->args, call->clip_key, given[i], maAppend);
    VSMap *ret = vsapi->invoke(plugin, call->name, call->args);
    VSNode *out = NULL;
    if (vsapi->mapGetError(ret))
        snprintf(err, ERR_LEN, "Upscale: %s.%s failed: %s", call->ns, call->name, vsapi->mapGetError(ret));
    else
        out = vsapi->mapGetNode(ret, "clip", 0, NULL);
    vsapi->freeMap(ret);
    return out;
}

#define MAX_CALLS 8
/* What create wires around our filter: the engine, the calls before it and after it, the output size. */
typedef struct {
    PyObject *engine;
    CallSpec pre[MAX_CALLS], post[MAX_CALLS];
    int npre, npost, out_width, out_height;
} Wiring;

static void free_wiring_maps(Wiring *wiring, const VSAPI *vsapi) {
    for (int i = 0; i < wiring->npre; i++) vsapi->freeMap(wiring->pre[i].args);
    for (int i = 0; i < wiring->npost; i++) vsapi->freeMap(wiring->post[i].args);
}

static int read_calls(PyObject *list, CallSpec *calls, int *count, VSNode *input, VSCore *core,
                      const VSAPI *vsapi) {
    if (!PyList_Check(list) || PyList_Size(list) > MAX_CALLS) {
        PyErr_SetString(PyExc_TypeError, "conversion calls must be a short list");
        return 0;
    }
    for (*count = 0; *count < PyList_Size(list); (*count)++)
        if (!call_from_python(PyList_GetItem(list, *count), &calls[*count], input, core, vsapi)) {
            (*count)++; /* the map was created; free it with the others */
            return 0;
        }
    return 1;
}

/* Ask vs_stdo.filter.plugin.prepare for the engine and the conversion calls around it. Holds the GIL
 * inside; fills err on failure. */
static int ask_python(VSNode *input, const VSMap *props0, const VSMap *in, Wiring *wiring, VSCore *core,
                       const VSAPI *vsapi, char *err) {
    const VSVideoInfo *vi = vsapi->getVideoInfo(input);
    int ok = 0;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *module = PyImport_ImportModule("vs_stdo.filter.plugin");
    PyObject *props = module ? props_to_dict(props0, vsapi) : NULL;
    PyObject *args = props ? args_to_dict(in, vsapi) : NULL;
    PyObject *bundle = args ? utf8_to_str(vsapi->mapGetData(in, "bundle", 0, NULL),
                                          vsapi->mapGetDataSize(in, "bundle", 0, NULL), "bundle") : NULL;
    PyObject *r = NULL;
    if (bundle)
        r = PyObject_CallMethod(module, "prepare", "O(iiiii)iiOO", bundle, vi->format.colorFamily,
                                vi->format.sampleType, vi->format.bitsPerSample, vi->format.subSamplingW,
                                vi->format.subSamplingH, vi->width, vi->height, props, args);
    PyObject *pre, *post;
    if (r && PyArg_ParseTuple(r, "OOOii", &wiring->engine, &pre, &post, &wiring->out_width, &wiring->out_height) &&
        read_calls(pre, wiring->pre, &wiring->npre, input, core, vsapi) &&
        read_calls(post, wiring->post, &wiring->npost, input, core, vsapi)) {
        Py_INCREF(wiring->engine);
        ok = 1;
    } else {
        take_python_error(err, ERR_LEN, module ? "Upscale: " : "Upscale: cannot import vs_stdo: ");
        free_wiring_maps(wiring, vsapi);
        wiring->engine = NULL;
    }
    Py_XDECREF(r);
    Py_XDECREF(bundle);
    Py_XDECREF(args);
    Py_XDECREF(props);
    Py_XDECREF(module);
    PyGILState_Release(gil);
    return ok;
}

static void VS_CC upscaleCreate(const VSMap *in, VSMap *out, void *userData, VSCore *core, const VSAPI *vsapi) {
    char err[ERR_LEN] = "";
    Wiring wiring = {0};
    VSNode *node = vsapi->mapGetNode(in, "clip", 0, NULL);
    const VSVideoInfo *vi = vsapi->getVideoInfo(node);

    if (!vsh_isConstantVideoFormat(vi)) {
        vsapi->mapSetError(out, "Upscale: the clip must have a constant format and size, but it has a "
                                "variable format or frame size (e.g. from std.Splice(mismatch=True)); convert it "
                                "first, e.g. with resize.Bicubic(format=..., width=..., height=...)");
        vsapi->freeNode(node);
        return;
    }
    /* Frame 0's props decide the colour conversion; fetch it before taking the GIL. */
    const VSFrame *first = vsapi->getFrame(0, node, err, ERR_LEN);
    if (!first) {
        char msg[ERR_LEN + 64];
        snprintf(msg, sizeof msg, "Upscale: cannot read frame 0 of the clip: %s", err);
        vsapi->mapSetError(out, msg);
        vsapi->freeNode(node);
        return;
    }
    int ok = ask_python(node, vsapi->getFramePropertiesRO(first), in, &wiring, core, vsapi, err);
    vsapi->freeFrame(first);
    if (!ok) {
        vsapi->mapSetError(out, err);
        vsapi->freeNode(node);
        return;
    }

    for (int i = 0; node && i < wiring.npre; i++)
        node = apply_call(node, &wiring.pre[i], core, vsapi, err);
    if (node) {
        const VSVideoFormat *f = &vsapi->getVideoInfo(node)->format;
        if ((f->colorFamily != cfRGB && f->colorFamily != cfGray) || f->sampleType != stFloat || f->bitsPerSample != 32) {
            snprintf(err, ERR_LEN, "Upscale: internal error: the colour calls did not produce RGBS or GRAYS");
            vsapi->freeNode(node);
            node = NULL;
        }
    }
    if (node) {
        UpscaleData *d = (UpscaleData *)malloc(sizeof *d);
        d->node = node;
        d->vi = *vsapi->getVideoInfo(node);
        d->vi.width = wiring.out_width;
        d->vi.height = wiring.out_height;
        d->engine = wiring.engine;
        wiring.engine = NULL;
        VSFilterDependency deps[] = {{d->node, rpStrictSpatial}};
        node = vsapi->createVideoFilter2("Upscale", &d->vi, upscaleGetFrame, upscaleFree, fmParallel, deps, 1, d, core);
        if (!node)
            snprintf(err, ERR_LEN, "Upscale: could not create the filter");
    }
    for (int i = 0; node && i < wiring.npost; i++)
        node = apply_call(node, &wiring.post[i], core, vsapi, err);

    /* apply_call consumed the argument maps' nodes; free what is left of the plan. */
    free_wiring_maps(&wiring, vsapi);
    if (wiring.engine) {
        PyGILState_STATE gil = PyGILState_Ensure();
        Py_DECREF(wiring.engine);
        PyGILState_Release(gil);
    }
    if (node)
        vsapi->mapConsumeNode(out, "clip", node, maAppend);
    else
        vsapi->mapSetError(out, err);
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
}
