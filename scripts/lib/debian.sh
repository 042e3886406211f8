# Sourced by the scripts that read this machine's Debian mirror or install Debian packages; the one
# place those two rules live. Nothing here touches the system's apt configuration.

# The URIs of this machine's Debian archives (deb822 .sources files, then sources.list), one per line.
debian_archive_uris() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' "$f"
  done
  if [ -f /etc/apt/sources.list ]; then
    awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}' /etc/apt/sources.list
  fi
  return 0
} 2>/dev/null

# _first_debian_uri main|security: the first Debian URI on stdin of that kind. It reads all of its input,
# so that under pipefail the writer never dies of SIGPIPE.
_first_debian_uri() { awk -v want="$1" '!found && tolower($0) ~ /debian/ && ((want == "security") == (tolower($0) ~ /security/)) {print; found = 1}'; }

# The main Debian archive (not the security one), or nothing.
debian_mirror_uri() { debian_archive_uris | _first_debian_uri main; }

# debian_mirror_lines SUITE: the sources lines of SUITE, SUITE-updates and SUITE-security from this
# machine's mirrors (for mmdebstrap), one per line; nothing when it has no Debian mirror.
debian_mirror_lines() {
  local main security
  main=$(debian_mirror_uri)
  security=$(debian_archive_uris | _first_debian_uri security)
  [ -n "$main" ] || return 0
  echo "deb $main $1 main"
  echo "deb $main $1-updates main"
  if [ -n "$security" ]; then echo "deb $security $1-security main"; fi
}

# ensure_debian_packages WHO PACKAGE...: install the missing ones (root with apt-get), or stop naming them.
ensure_debian_packages() {
  local who=$1 missing=() p
  shift
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "$who: missing Debian packages (install them as root): ${missing[*]}" >&2
    exit 1
  fi
  echo "$who: installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  } || { echo "$who: apt-get could not install: ${missing[*]}" >&2; exit 1; }
}

# ensure_commands WHO COMMAND:PACKAGE...: the packages of the commands that are not on PATH.
ensure_commands() {
  local who=$1 need=() pair
  shift
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
  done
  [ ${#need[@]} -eq 0 ] || ensure_debian_packages "$who" "${need[@]}"
}
