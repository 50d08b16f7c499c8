#!/bin/sh
# Turns a Debian bookworm root with python3 into the sandbox image's root.
# Runs as root *inside* the target: under chroot for the offline build
# (build_offline.sh), as a RUN step for the Dockerfile. Needs no network:
# every wheel, pip's own included, is already in $BUILD/wheels.
#
#   sh finalize.sh /tmp/nb-build    (holds requirements.txt and wheels/)
set -eu
BUILD=${1:-/tmp/nb-build}
export PYTHONDONTWRITEBYTECODE=1 LANG=C.UTF-8

echo "[finalize] installing $(grep -c '==' "$BUILD/requirements.txt") pinned packages"
# pip runs straight from its wheel, so pip itself never lands in the image.
# --break-system-packages: Debian marks its python as externally managed; we
# install into /usr/local, which is exactly what that marker leaves to us.
PIP_WHEEL=$(ls "$BUILD"/wheels/pip-*.whl)
python3 "$PIP_WHEEL/pip" install --no-index --find-links "$BUILD/wheels" \
    --only-binary=:all: --break-system-packages --root-user-action=ignore \
    --disable-pip-version-check --no-cache-dir --no-compile --no-warn-script-location --quiet \
    -r "$BUILD/requirements.txt"

SITE=$(python3 -c 'import os, pandas; print(os.path.dirname(os.path.dirname(pandas.__file__)))')
echo "[finalize] site-packages: $SITE"

# Size: test suites, C/Cython sources and headers are never used at run time;
# neither are Arrow's network clients (Flight RPC, S3) in a box with no network.
for d in pandas/tests numpy/tests numpy/_core/tests numpy/lib/tests numpy/linalg/tests \
         numpy/ma/tests numpy/random/tests numpy/fft/tests numpy/polynomial/tests \
         numpy/typing/tests numpy/testing/tests numpy/f2py numpy/_pyinstaller \
         pyarrow/tests pyarrow/include pyarrow/src matplotlib/tests \
         mpl_toolkits/axisartist/tests mpl_toolkits/axes_grid1/tests mpl_toolkits/mplot3d/tests \
         zmq/tests tornado/test; do
    rm -rf "${SITE:?}/$d"
done
rm -f "$SITE"/pyarrow/*flight* "$SITE"/pyarrow/libarrow_s3.so* "$SITE"/pyarrow/_s3fs.* \
      "$SITE"/pyarrow/_pyarrow_cpp_tests.*
find "$SITE" \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' -o -name '*.h' -o -name '*.cpp' \) -delete

# Bytecode now, because the image's root is read-only at run time: without
# it every kernel start would recompile pandas & co. from source. The image
# never changes, so the .pyc files need not re-check their sources.
python3 -m compileall -q --invalidation-mode unchecked-hash "$SITE" >/dev/null || true

# The kernel papermill asks for: `python3`, launched by this interpreter.
python3 -m ipykernel install --prefix /usr/local --name python3 --display-name "Python 3 (sandbox)" >/dev/null
python3 -c 'from jupyter_client.kernelspec import KernelSpecManager as K; print("[finalize] kernel python3:", " ".join(K().get_kernel_spec("python3").argv))'

# The unprivileged user every run uses, and the mount points of a run folder.
if ! grep -q '^nb:' /etc/passwd; then
    groupadd --gid 1000 nb
    useradd --uid 1000 --gid 1000 --no-create-home --home-dir /home/nb --shell /usr/sbin/nologin nb
fi
mkdir -p /home/nb /nb/in /nb/output /nb/record /nb/work
chown 1000:1000 /home/nb /nb/work

# Smoke test: everything a notebook and the runner import, as the image will.
# The verdict is the printed line and the exit code of the checks; the
# interpreter then leaves with os._exit, because Arrow's thread pools can abort
# its teardown ("terminate called without an active exception") after every
# check passed. A failing import or assertion still exits non-zero.
HOME=/tmp MPLBACKEND=Agg MPLCONFIGDIR=/tmp/mpl python3 -c '
import os, sys
import papermill, nbformat, ipykernel, pandas, pyarrow.parquet, pyarrow.dataset, pyarrow.fs, matplotlib.pyplot, numpy
pandas.DataFrame({"a": [1]}).to_parquet("/tmp/smoke.parquet"); assert len(pandas.read_parquet("/tmp/smoke.parquet")) == 1
print("[finalize] imports ok: pandas", pandas.__version__, "pyarrow", pyarrow.__version__, "numpy", numpy.__version__)
sys.stdout.flush(); sys.stderr.flush(); os._exit(0)'

# Size: Debian docs (copyright files stay), manuals, locales, apt state, logs.
find /usr/share/doc -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || true
find /usr/share/doc -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf /usr/share/man/* /usr/share/info/* /usr/share/locale/* /usr/share/lintian \
       /var/cache/apt/* /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/*.log \
       /var/log/apt/* /root/.cache /tmp/mpl /tmp/smoke.parquet "$BUILD"
echo "[finalize] done"
