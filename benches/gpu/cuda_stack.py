#!/usr/bin/env python3
"""Which NVRTC the GPU check should use with this driver and device, found and read with
ctypes (standard library only), before Kestrel runs:

    python3 cuda_stack.py [--python-dirs DIR ...]

Looks for libnvrtc.so.13 where the dynamic loader would (LD_LIBRARY_PATH, its cache),
in the CUDA toolkit folders, and in pip's `nvidia/cu13/lib` under each site-packages
folder; reads each one's version and architectures, the driver's CUDA version and the
device's name and compute capability; picks the first NVRTC whose modules this driver
loads (Kestrel's rule: a CUBIN needs NVRTC's major version <= the driver's; PTX, used only
for an architecture NVRTC cannot emit, needs NVRTC <= the driver). Prints `key: value`
lines, `nvrtc_dir:` last when one fits; exit 0 when one fits, 3 when none does, 2 when
no NVRTC was found. No GPU or driver: the first NVRTC found is chosen, unchecked.
"""
import ctypes
import glob
import os
import site
import subprocess
import sys

NAME = "libnvrtc.so.13"


def loader_cache():
    """Folders of NAME in the dynamic loader's cache."""
    try:
        cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    except OSError:
        return []
    return [os.path.dirname(line.split("=>")[-1].strip())
            for line in cache.splitlines() if NAME in line and "=>" in line]


def toolkit_dirs():
    """The CUDA toolkit's library folders."""
    return (["/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"]
            + sorted(glob.glob("/usr/local/cuda-13*/lib64"), reverse=True))


def candidates(extra_site_dirs=()):
    """Folders that may hold NAME, in the order the check prefers them."""
    dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    dirs += loader_cache() + toolkit_dirs()
    sites = list(extra_site_dirs)
    try:
        sites += site.getsitepackages() + [site.getusersitepackages()]
    except AttributeError:  # a virtualenv's old site module
        pass
    dirs += [os.path.join(s, "nvidia", "cu13", "lib") for s in sites]
    seen, found = set(), []
    for d in dirs:
        path = os.path.join(d, NAME)
        real = os.path.realpath(path)
        if os.path.exists(path) and real not in seen:
            seen.add(real)
            found.append(d)
    return found


def nvrtc_info(folder):
    """(version, architectures) of the NVRTC in folder, or an error string."""
    try:
        lib = ctypes.CDLL(os.path.join(folder, NAME))
        major, minor, count = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        if lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)) != 0:
            return "nvrtcVersion failed"
        lib.nvrtcGetNumSupportedArchs(ctypes.byref(count))
        archs = (ctypes.c_int * max(count.value, 1))()
        lib.nvrtcGetSupportedArchs(archs)
        return (major.value, minor.value), list(archs[:count.value])
    except (OSError, AttributeError) as e:
        return f"cannot load: {e}"


def driver_info():
    """(driver version, device name, compute capability number) or an error string."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError as e:
        return f"no CUDA driver: {e}"
    if cuda.cuInit(0) != 0:
        return "cuInit failed: no usable GPU"
    version, dev, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    cuda.cuDriverGetVersion(ctypes.byref(version))
    if cuda.cuDeviceGet(ctypes.byref(dev), 0) != 0:
        return "no device 0"
    name = ctypes.create_string_buffer(256)
    cuda.cuDeviceGetName(name, 256, dev)
    cuda.cuDeviceGetAttribute(ctypes.byref(major), 75, dev)  # COMPUTE_CAPABILITY_MAJOR
    cuda.cuDeviceGetAttribute(ctypes.byref(minor), 76, dev)  # COMPUTE_CAPABILITY_MINOR
    v = version.value
    return (v // 1000, v % 1000 // 10), name.value.decode(), major.value * 10 + minor.value


def fits(nvrtc_version, archs, driver_version, arch):
    """None when this NVRTC's modules load on the driver, else why not (Kestrel's rule,
    kernels/src/cuda/module.rs::check_versions)."""
    if arch in archs:
        if nvrtc_version[0] > driver_version[0]:
            return (f"CUBIN from NVRTC {nvrtc_version[0]}.{nvrtc_version[1]} needs a "
                    f"CUDA {nvrtc_version[0]}.x driver")
        return None
    if nvrtc_version > driver_version:
        return (f"NVRTC cannot emit sm_{arch}, so Kestrel would use PTX, which driver "
                f"{driver_version[0]}.{driver_version[1]} cannot JIT from NVRTC "
                f"{nvrtc_version[0]}.{nvrtc_version[1]}")
    return None


def main(argv):
    extra = argv[argv.index("--python-dirs") + 1:] if "--python-dirs" in argv else []
    folders = candidates(extra)
    driver = driver_info()
    if isinstance(driver, str):
        print(f"driver: {driver}")
    else:
        (dmaj, dmin), name, arch = driver
        print(f"driver: CUDA {dmaj}.{dmin}")
        print(f"device: {name} (sm_{arch})")
    if not folders:
        print(f"nvrtc: {NAME} not found (LD_LIBRARY_PATH, ldconfig, /usr/local/cuda*, "
              f"pip's nvidia/cu13/lib); `pip install nvidia-cuda-nvrtc` provides it")
        return 2
    chosen, refused = None, []
    for folder in folders:
        info = nvrtc_info(folder)
        if isinstance(info, str):
            refused.append(f"{folder}: {info}")
            continue
        version, archs = info
        why = None if isinstance(driver, str) else fits(version, archs, driver[0], driver[2])
        label = f"{os.path.join(folder, NAME)} = NVRTC {version[0]}.{version[1]}"
        print(f"nvrtc_found: {label}" + (f" (refused: {why})" if why else ""))
        if why:
            refused.append(f"{label}: {why}")
        elif chosen is None:
            chosen = (os.path.abspath(folder), label)
    if chosen is None:
        dv = driver[0]
        print(f"incompatible: no NVRTC found here works with this driver: {'; '.join(refused)}. "
              f"Fix: `pip install nvidia-cuda-nvrtc=={dv[0]}.{dv[1]}.*` (its lib folder is "
              f"site-packages/nvidia/cu{dv[0]}/lib), or update the driver")
        return 3
    print(f"nvrtc: {chosen[1]}" + (" (unchecked: no driver)" if isinstance(driver, str) else ""))
    print(f"nvrtc_dir: {chosen[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
