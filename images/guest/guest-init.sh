# vxchaos guest, after switch_root (run by busybox init): `sysinit` once and, alongside, `agent` (respawned).
. /run/vxc/env
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

case "$1" in
sysinit)
  hostname vxc-guest
  ip link set lo up
  # The guest's default conntrack table (8192 at 1 GiB) fills in seconds and fakes stalls: size it like the host.
  modprobe nf_conntrack hashsize="$vxc_cthash"
  sysctl -qw net.netfilter.nf_conntrack_max="$vxc_ctmax"
  # Every other netfilter/bridge/VXLAN module loads on demand; br_netfilter does not.
  modprobe br_netfilter
  mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
  mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
  mount -t bpf bpf /sys/fs/bpf 2>/dev/null
  mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
  echo done >/run/vxc/sysinit.done
  echo "vxc: sysinit done at $(cut -d" " -f1 /proc/uptime) s (clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource))" >/dev/console
  # What the cluster's bring-up loads on demand anyway, loaded while the harness starts talking to the agent.
  modprobe -a veth vxlan nf_nat nf_tables nft_chain_nat nft_compat xt_MASQUERADE xt_comment xt_mark xt_nat xt_statistic xt_tcpudp 2>/dev/null
  ;;
agent)
  exec env UV_THREADPOOL_SIZE=8 "$vxc_node" "$vxc_agent"
  ;;
esac
