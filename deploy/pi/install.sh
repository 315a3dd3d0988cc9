#!/usr/bin/env bash
# Installs the scan2pay checkout terminal on Raspberry Pi OS Bookworm, 32- or
# 64-bit, and starts pairing it with the PSP. docs/pi.md walks through it.
#
#   sudo deploy/pi/install.sh --psp-url https://pay.example.com [--display SPEC]
#   sudo deploy/pi/install.sh --upgrade          # from a newer copy of the source
#   sudo deploy/pi/install.sh --uninstall [--purge]
#
# Run it again at any time: each step checks what is there first.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: install.sh [--psp-url URL] [--display SPEC] [--name NAME] [--uart]
                  [--source DIR] [--dry-run] [--root DIR]
       install.sh --upgrade [--source DIR] [--dry-run] [--root DIR]
       install.sh --uninstall [--purge] [--dry-run] [--root DIR]

  --psp-url URL   the PSP's public URL (https://...): pairs the terminal with it
  --display SPEC  the display, as docs/pi.md's wiring tables give it
                  (default ssd1306:i2c:1:0x3C)
  --name NAME     the shop's name on the idle screen (default: scan2pay)
  --uart          also enable the Pi's UART for a Nextion or a serial printer,
                  and take the serial console off it (a reboot applies it)
  --source DIR    the scan2pay source to install (default: the one holding
                  this script)
  --upgrade       install the source over an installed terminal, keep its
                  settings, and restart it
  --uninstall     stop and remove the service and /opt/scan2pay; the settings
                  in /etc/scan2pay stay unless --purge is given too
  --purge         with --uninstall: also remove /etc/scan2pay, /var/lib/scan2pay
                  and the scan2pay user
  --dry-run       print each step, its commands and the files it would write;
                  change nothing
  --root DIR      write every file under DIR instead of / (for tests: the
                  commands still run on this machine, so put stand-ins for
                  apt-get, raspi-config, useradd, systemctl, ... first on PATH)
EOF
}

SERVICE_USER=scan2pay
SERVICE=scan2pay-terminal.service
PREFIX=/opt/scan2pay
VENV=$PREFIX/.venv
CONFIG_DIR=/etc/scan2pay
CONFIG=$CONFIG_DIR/terminal.toml
STATE_DIR=/var/lib/scan2pay
UNIT=/etc/systemd/system/$SERVICE
TIME_WAIT_DROPIN=/etc/systemd/system/systemd-time-wait-sync.service.d/scan2pay.conf
# The groups that own the display's buses on Raspberry Pi OS, and the sound
# devices (the soundbox, docs/terminal.md "Sound").
GROUPS_WANTED=(i2c spi gpio dialout audio)
# python3-venv for the venv; i2c-tools for i2cdetect; espeak-ng and
# alsa-utils (aplay) for the soundbox; the rest are the
# libraries Pillow's builds on the Pi's own wheel index (piwheels) link to.
# The compiler is not among them: every compiled dependency comes as a wheel.
# python3-spidev: spidev has no wheel for Python 3.11 on PyPI (and piwheels
# serves 32-bit only); the venv sees Debian's through --system-site-packages.
APT_PACKAGES=(
    python3 python3-venv python3-spidev i2c-tools ca-certificates espeak-ng alsa-utils
    libopenjp2-7 libjpeg62-turbo libtiff6 libfreetype6 liblcms2-2 libwebp7 libxcb1
)
# How long boot waits for NTP before the terminal starts anyway (it then
# judges expiry by the PSP's clock until NTP succeeds).
TIME_WAIT_SECONDS=90

MODE=install
PSP_URL=
DISPLAY_SPEC=ssd1306:i2c:1:0x3C
SHOP_NAME=
UART=no
PURGE=no
DRY_RUN=no
ROOT=
SOURCE=

fail() {
    echo "install.sh: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --psp-url) [ $# -ge 2 ] || fail "--psp-url needs a URL"; PSP_URL=$2; shift 2 ;;
        --display) [ $# -ge 2 ] || fail "--display needs a spec"; DISPLAY_SPEC=$2; shift 2 ;;
        --name) [ $# -ge 2 ] || fail "--name needs a name"; SHOP_NAME=$2; shift 2 ;;
        --source) [ $# -ge 2 ] || fail "--source needs a folder"; SOURCE=$2; shift 2 ;;
        --root) [ $# -ge 2 ] || fail "--root needs a folder"; ROOT=$2; shift 2 ;;
        --uart) UART=yes; shift ;;
        --upgrade) [ "$MODE" = install ] || fail "give one of --upgrade and --uninstall"; MODE=upgrade; shift ;;
        --uninstall) [ "$MODE" = install ] || fail "give one of --upgrade and --uninstall"; MODE=uninstall; shift ;;
        --purge) PURGE=yes; shift ;;
        --dry-run) DRY_RUN=yes; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; fail "unknown option $1" ;;
    esac
done

# Every check before the first change: bad input changes nothing.
# A value that goes into terminal.toml as a TOML string: no quote, backslash
# or control character to escape.
plain_value() {
    case "$2" in
        *[\"\\]* | *[[:cntrl:]]*) fail "$1 must not contain quotes, backslashes or control characters" ;;
    esac
}
if [ -n "$PSP_URL" ]; then
    case "$PSP_URL" in
        http://?* | https://?* | HTTP://?* | HTTPS://?*) ;;
        *) fail "--psp-url must be an http(s):// URL, like https://pay.example.com" ;;
    esac
    plain_value --psp-url "$PSP_URL"
fi
[ -n "$DISPLAY_SPEC" ] || fail "--display must not be empty"
plain_value --display "$DISPLAY_SPEC"
plain_value --name "$SHOP_NAME"
[ "$PURGE" = no ] || [ "$MODE" = uninstall ] || fail "--purge goes with --uninstall"
if [ -n "$ROOT" ]; then
    case "$ROOT" in
        /*) ;;
        *) fail "--root must be an absolute path" ;;
    esac
    [ -d "$ROOT" ] || fail "--root $ROOT is not a folder"
    ROOT=${ROOT%/}
fi
if [ -z "$SOURCE" ]; then
    SOURCE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fi
if [ "$MODE" != uninstall ]; then
    if [ ! -f "$SOURCE/pyproject.toml" ] || [ ! -d "$SOURCE/terminal" ]; then
        fail "$SOURCE is not the scan2pay source (no pyproject.toml and terminal/); give --source"
    fi
    SOURCE=$(cd "$SOURCE" && pwd)
fi
if [ "$MODE" = upgrade ] && [ ! -x "$ROOT$VENV/bin/python" ]; then
    fail "no terminal installed in $ROOT$PREFIX to upgrade; run install.sh without --upgrade"
fi
if [ "$DRY_RUN" = no ] && [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
    fail "run it as root: sudo $0 ..."
fi

export DEBIAN_FRONTEND=noninteractive

step() {
    printf '\n==> %s\n' "$*"
}

note() {
    printf '    %s\n' "$*"
}

# Runs a command, or only shows it with --dry-run.
run() {
    if [ "$DRY_RUN" = yes ]; then
        printf '    would run: %s\n' "$*"
    else
        printf '    + %s\n' "$*"
        "$@"
    fi
}

have() {
    command -v "$1" >/dev/null 2>&1
}

# put MODE OWNER PATH: writes standard input to ROOT/PATH with that mode and
# owner, through a temporary file in the same folder, so that the file is
# never seen half written nor with looser rights.
put() {
    local mode=$1 owner=$2 path=$3 target=$ROOT$3 temporary
    if [ "$DRY_RUN" = yes ]; then
        printf '    would write %s (mode %s, owner %s):\n' "$path" "$mode" "$owner"
        sed 's/^/        | /'
        return
    fi
    printf '    writing %s (mode %s, owner %s)\n' "$path" "$mode" "$owner"
    mkdir -p "$(dirname "$target")"
    temporary=$(mktemp "$target.XXXXXX")
    cat >"$temporary"
    chmod "$mode" "$temporary"
    chown "$owner" "$temporary"
    mv -f "$temporary" "$target"
}

# folder MODE OWNER PATH
folder() {
    local mode=$1 owner=$2 path=$3
    if [ "$DRY_RUN" = yes ]; then
        printf '    would make %s (mode %s, owner %s)\n' "$path" "$mode" "$owner"
        return
    fi
    mkdir -p "$ROOT$path"
    chmod "$mode" "$ROOT$path"
    chown "$owner" "$ROOT$path"
}

remove() {
    local path=$1
    if [ ! -e "$ROOT$path" ]; then
        return
    fi
    run rm -rf -- "$ROOT$path"
}

user_exists() {
    id -u "$SERVICE_USER" >/dev/null 2>&1
}

install_packages() {
    step "Installing Debian's packages"
    run apt-get update
    run apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}"
}

enable_buses() {
    step "Enabling I2C and SPI"
    if ! have raspi-config; then
        note "raspi-config not found (not Raspberry Pi OS?): enable them yourself with"
        note "dtparam=i2c_arm=on and dtparam=spi=on in /boot/firmware/config.txt"
        return
    fi
    run raspi-config nonint do_i2c 0
    run raspi-config nonint do_spi 0
    if [ "$UART" = yes ]; then
        run raspi-config nonint do_serial_hw 0
        run raspi-config nonint do_serial_cons 1
        note "the UART is enabled and the serial console is off after a reboot"
    fi
}

make_user() {
    step "Creating the $SERVICE_USER user"
    if user_exists; then
        note "$SERVICE_USER exists"
    else
        run useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
            --shell /usr/sbin/nologin --comment "scan2pay checkout terminal" "$SERVICE_USER"
    fi
    # Raspberry Pi OS has them all. Elsewhere the unit's SupplementaryGroups=
    # would fail to start the service over a missing one: make it.
    local group joined
    for group in "${GROUPS_WANTED[@]}"; do
        if ! getent group "$group" >/dev/null 2>&1; then
            run groupadd --system "$group"
        fi
    done
    joined=$(IFS=,; echo "${GROUPS_WANTED[*]}")
    run usermod --append --groups "$joined" "$SERVICE_USER"
}

make_folders() {
    step "Making the folders"
    folder 0755 root:root "$PREFIX"
    # Pairing writes terminal.toml as the service user: the folder is the
    # group's to write, the files in it the user's alone.
    folder 0770 "root:$SERVICE_USER" "$CONFIG_DIR"
    folder 0750 "$SERVICE_USER:$SERVICE_USER" "$STATE_DIR"
}

install_venv() {
    step "Installing scan2pay's terminal into $PREFIX"
    local python=$ROOT$VENV/bin/python
    if [ -x "$python" ]; then
        note "the venv $VENV exists"
    else
        run python3 -m venv --system-site-packages "$ROOT$VENV"
    fi
    # The terminal's role and the Pi's panels (luma's SPI and GPIO, luma.lcd),
    # none of the PSP's stack.
    if [ "$MODE" = upgrade ]; then
        run "$python" -m pip install --upgrade "${SOURCE}[terminal,pi]"
        # The same version number from a newer source: pip would keep the old.
        run "$python" -m pip install --no-deps --force-reinstall "$SOURCE"
    else
        run "$python" -m pip install "${SOURCE}[terminal,pi]"
    fi
    if [ "$DRY_RUN" = yes ]; then
        printf '    would copy %s/docs to %s/docs\n' "$SOURCE" "$PREFIX"
    else
        mkdir -p "$ROOT$PREFIX/docs"
        cp -R "$SOURCE/docs/." "$ROOT$PREFIX/docs/"
    fi
}

write_config() {
    step "Writing $CONFIG"
    if [ -e "$ROOT$CONFIG" ]; then
        note "$CONFIG exists: kept as it is"
        return
    fi
    {
        echo "# The checkout terminal's settings (docs/pi.md), written by deploy/pi/install.sh."
        echo "# scan2pay-terminal pair adds the broker login, the merchant and terminal ids"
        echo "# and the PSP's key; deploy/terminal.toml.example describes every key."
        echo "display = \"$DISPLAY_SPEC\""
        if [ -n "$SHOP_NAME" ]; then
            echo "name = \"$SHOP_NAME\""
        fi
        if [ -n "$PSP_URL" ]; then
            echo "psp_url = \"$PSP_URL\""
        fi
    } | put 0600 "$SERVICE_USER:$SERVICE_USER" "$CONFIG"
}

install_unit() {
    step "Installing the systemd unit"
    put 0644 root:root "$UNIT" <"$SOURCE/deploy/systemd/$SERVICE"
    put 0644 root:root "$TIME_WAIT_DROPIN" <<EOF
# Installed by scan2pay's deploy/pi/install.sh. scan2pay-terminal waits for
# time-sync.target; systemd-time-wait-sync would hold it back for ever
# without NTP. The terminal then judges by the PSP's clock (docs/pi.md).
[Service]
TimeoutStartSec=$TIME_WAIT_SECONDS
EOF
    run systemctl daemon-reload
    run systemctl enable "$SERVICE"
}

paired() {
    [ -f "$ROOT$CONFIG" ] && grep -Eq '^[[:space:]]*merchant[[:space:]]*=' "$ROOT$CONFIG"
}

pair_and_start() {
    step "Pairing"
    if paired; then
        note "$CONFIG names its merchant already: not pairing again"
    elif [ -z "$PSP_URL" ]; then
        # Unpaired and no PSP to pair with: the service would only exit on
        # its settings. It is enabled; it starts once it has them.
        note "no --psp-url given: not starting the terminal. Pair it later with"
        note "sudo $0 --psp-url URL   (or add psp_url to $CONFIG and start $SERVICE)"
        return
    else
        # The service pairs by itself (its settings name the PSP and no
        # merchant): the code is on the display, and in the journal.
        note "the display shows a code: approve it on the merchant board"
        note "(journalctl -u $SERVICE -f shows it too)"
    fi
    step "Starting the terminal"
    run systemctl restart "$SERVICE"
    note "check it with: sudo -u $SERVICE_USER $VENV/bin/scan2pay-terminal doctor --config $CONFIG"
    note "and: journalctl -u $SERVICE -f"
}

uninstall() {
    step "Stopping and removing the service"
    if [ -e "$ROOT$UNIT" ]; then
        run systemctl disable --now "$SERVICE"
    fi
    remove "$UNIT"
    remove "$TIME_WAIT_DROPIN"
    # The drop-in folder may hold the administrator's own drop-ins too.
    if [ -d "$ROOT$(dirname "$TIME_WAIT_DROPIN")" ]; then
        run rmdir --ignore-fail-on-non-empty "$ROOT$(dirname "$TIME_WAIT_DROPIN")"
    fi
    run systemctl daemon-reload
    step "Removing $PREFIX"
    remove "$PREFIX"
    if [ "$PURGE" = yes ]; then
        step "Removing the settings, the state and the user"
        remove "$CONFIG_DIR"
        remove "$STATE_DIR"
        if user_exists; then
            run userdel "$SERVICE_USER"
        fi
    else
        note "kept $CONFIG_DIR (the terminal's broker login) and $STATE_DIR; --purge removes them"
    fi
    note "on the PSP, take the terminal's broker account away: psp-server terminal revoke"
}

if [ -r /etc/os-release ]; then
    # shellcheck source=/dev/null
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    if [ "$codename" != bookworm ]; then
        note "this is made for Raspberry Pi OS Bookworm; this system is ${codename:-unknown}"
    fi
fi
[ "$DRY_RUN" = no ] || note "dry run: nothing is changed"
[ -z "$ROOT" ] || note "files go under $ROOT"

case "$MODE" in
    install)
        install_packages
        enable_buses
        make_user
        make_folders
        install_venv
        write_config
        install_unit
        pair_and_start
        ;;
    upgrade)
        install_packages
        make_folders
        install_venv
        install_unit
        step "Restarting the terminal"
        run systemctl restart "$SERVICE"
        ;;
    uninstall)
        uninstall
        ;;
esac
step "Done"
