#!/usr/bin/env bash
# Reserves huge pages and mounts hugetlbfs so that huge-page rings can be
# created (ringcast's huge_pages="require"). Needs root (or sudo). CI runs it
# before the test suite; on your own host it is the setup the error messages
# of huge_pages="require" describe.
#
# Usage: bash scripts/hugepages.sh [PAGES_2M] [PAGES_1G]
#   PAGES_2M  2 MiB pages to have in the pool (default 64, i.e. 128 MiB)
#   PAGES_1G  1 GiB pages to try for (default 1; skipped with a note when the
#             kernel cannot find a free contiguous GiB)
set -euo pipefail

pages_2m="${1:-64}"
pages_1g="${2:-1}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
pools=/sys/kernel/mm/hugepages

reserve() { # size_kb wanted
    local file="$pools/hugepages-$1kB/nr_hugepages"
    if [ ! -e "$file" ]; then
        echo "hugepages: this kernel has no $1 kB huge pages"
        return 0
    fi
    local have
    have="$(cat "$file")"
    if [ "$have" -lt "$2" ]; then
        echo "$2" | $sudo tee "$file" >/dev/null || true
    fi
    echo "hugepages: $1 kB pool has $(cat "$file") pages ($(cat "$pools/hugepages-$1kB/free_hugepages") free), wanted $2"
}

mount_pool() { # mount_point page_size_option size_kb
    [ -e "$pools/hugepages-$3kB" ] || return 0
    if awk -v p="$1" '$2 == p && $3 == "hugetlbfs"' /proc/self/mounts | grep -q .; then
        echo "hugepages: $1 already mounted"
    else
        $sudo mkdir -p "$1"
        $sudo mount -t hugetlbfs -o "pagesize=$2,mode=1777" none "$1"
        echo "hugepages: mounted hugetlbfs ($2 pages) at $1"
    fi
}

reserve 2048 "$pages_2m"
mount_pool /dev/hugepages 2M 2048
if [ "$pages_1g" -gt 0 ]; then
    reserve 1048576 "$pages_1g"
    if [ -e "$pools/hugepages-1048576kB" ] && [ "$(cat "$pools/hugepages-1048576kB/nr_hugepages")" -gt 0 ]; then
        mount_pool /dev/hugepages-1G 1G 1048576
    fi
fi
