import { readdir, readFile, statfs } from "node:fs/promises";
import os from "node:os";
import type { HandlerResponse, PathDefinition } from "../../sdk/types.js";

/**
 * `sys/host-info`: Vault's host report (`cpu`, `cpu_times`, `disk`, `host`, `memory`, `timestamp`),
 * with the field names of the gopsutil structures Vault serialises. Read from `node:os`,
 * `fs.statfs` and, on Linux, `/proc` (what gopsutil reads too); no dependency. Each section is
 * collected on its own: one that fails is left out and named in `warnings`
 * (`unable to collect <section> info: <reason>`), as Vault does.
 *
 * Access is Vault's: the `read` capability on `sys/host-info`. Vault does not list the path among
 * its sudo (root) paths; its only restriction, "root namespace only", holds trivially here.
 */

const isLinux = process.platform === "linux";

/** Seconds per `/proc/stat` tick: USER_HZ, 100 on every mainstream Linux (gopsutil assumes the same). */
const CLOCK_TICKS = 100;

async function text(path: string): Promise<string> {
  return readFile(path, "utf8");
}

async function textOr(path: string, fallback = ""): Promise<string> {
  try {
    return await text(path);
  } catch {
    return fallback;
  }
}

/** `key: value` lines, the format of `/proc/cpuinfo` blocks and `/proc/meminfo`. */
function colonFields(block: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of block.split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) out.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return out;
}

const int = (s: string | undefined): number => {
  const n = Number.parseInt(s ?? "", 10);
  return Number.isFinite(n) ? n : 0;
};
const float = (s: string | undefined): number => {
  const n = Number.parseFloat(s ?? "");
  return Number.isFinite(n) ? n : 0;
};

// ---------------------------------------------------------------------------------------------
// cpu: gopsutil cpu.InfoStat, one entry per logical CPU

async function cpuInfo(): Promise<Record<string, unknown>[]> {
  if (isLinux) {
    const blocks = (await text("/proc/cpuinfo")).split(/\n\s*\n/).map(colonFields).filter((f) => f.has("processor"));
    if (blocks.length) {
      return Promise.all(
        blocks.map(async (f) => {
          const cpu = int(f.get("processor"));
          // gopsutil prefers the maximum frequency cpufreq reports over the momentary `cpu MHz`.
          const maxKhz = float(await textOr(`/sys/devices/system/cpu/cpu${cpu}/cpufreq/cpuinfo_max_freq`));
          return {
            cpu,
            vendorId: f.get("vendor_id") ?? f.get("CPU implementer") ?? "",
            family: f.get("cpu family") ?? f.get("CPU architecture") ?? "",
            model: f.get("model") ?? f.get("CPU part") ?? "",
            stepping: int(f.get("stepping") ?? f.get("CPU revision")),
            physicalId: f.get("physical id") ?? "",
            coreId: f.get("core id") ?? "",
            cores: 1,
            modelName: f.get("model name") ?? f.get("Processor") ?? "",
            mhz: maxKhz > 0 ? maxKhz / 1000 : float(f.get("cpu MHz")),
            cacheSize: int(f.get("cache size")),
            flags: (f.get("flags") ?? f.get("Features") ?? "").split(/\s+/).filter(Boolean),
            microcode: f.get("microcode") ?? "",
          };
        }),
      );
    }
  }
  return os.cpus().map((c, cpu) => ({ cpu, vendorId: "", family: "", model: "", stepping: 0, physicalId: "", coreId: "", cores: 1, modelName: c.model, mhz: c.speed, cacheSize: 0, flags: [], microcode: "" }));
}

// ---------------------------------------------------------------------------------------------
// cpu_times: gopsutil cpu.TimesStat per CPU (`cpu0`, `cpu1`, ...), in seconds

const TIME_FIELDS = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guestNice"] as const;

async function cpuTimes(): Promise<Record<string, unknown>[]> {
  if (isLinux) {
    const rows = (await text("/proc/stat")).split("\n").filter((l) => /^cpu\d+\s/.test(l));
    if (rows.length) {
      return rows.map((row) => {
        const [name, ...values] = row.trim().split(/\s+/);
        const t: Record<string, number> = {};
        TIME_FIELDS.forEach((k, i) => (t[k] = float(values[i]) / CLOCK_TICKS));
        return { cpu: name, user: t.user, system: t.system, idle: t.idle, nice: t.nice, iowait: t.iowait, irq: t.irq, softirq: t.softirq, steal: t.steal, guest: t.guest, guestNice: t.guestNice };
      });
    }
  }
  return os.cpus().map((c, i) => ({
    cpu: `cpu${i}`,
    user: c.times.user / 1000,
    system: c.times.sys / 1000,
    idle: c.times.idle / 1000,
    nice: c.times.nice / 1000,
    iowait: 0,
    irq: c.times.irq / 1000,
    softirq: 0,
    steal: 0,
    guest: 0,
    guestNice: 0,
  }));
}

// ---------------------------------------------------------------------------------------------
// disk: gopsutil disk.UsageStat for each physical partition

/** Mount points and their filesystem types; on Linux only real filesystems (not `nodev` ones), as gopsutil's Partitions(false). */
async function partitions(): Promise<{ path: string; fstype: string }[]> {
  if (!isLinux) return [{ path: process.platform === "win32" ? `${process.cwd().slice(0, 2)}\\` : "/", fstype: "" }];
  const physical = new Set(
    (await textOr("/proc/filesystems"))
      .split("\n")
      .filter((l) => l.trim() && !l.startsWith("nodev"))
      .map((l) => l.trim()),
  );
  physical.add("zfs");
  // Mount points escape blanks and backslashes as octal (`\040`).
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return (await text("/proc/self/mounts"))
    .split("\n")
    .map((l) => l.split(" "))
    .filter((f) => f.length >= 3 && f[0] !== "none" && physical.has(f[2]))
    .map((f) => ({ path: unescape(f[1]), fstype: f[2] }));
}

async function diskUsage(warnings: string[]): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  const parts = await partitions();
  for (const [i, p] of parts.entries()) {
    try {
      const s = await statfs(p.path);
      const total = s.blocks * s.bsize;
      const free = s.bavail * s.bsize;
      const used = (s.blocks - s.bfree) * s.bsize;
      const inodesUsed = s.files - s.ffree;
      out.push({
        path: p.path,
        fstype: p.fstype,
        total,
        free,
        used,
        usedPercent: used + free > 0 ? (used / (used + free)) * 100 : 0,
        inodesTotal: s.files,
        inodesUsed,
        inodesFree: s.ffree,
        inodesUsedPercent: s.files > 0 ? (inodesUsed / s.files) * 100 : 0,
      });
    } catch (err) {
      warnings.push(`unable to collect disk.${i} info: ${(err as Error).message}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// host: gopsutil host.InfoStat, plus the v2 spelling `hostid` Vault keeps beside `hostId`

const FAMILY: Record<string, string> = {
  debian: "debian",
  ubuntu: "debian",
  linuxmint: "debian",
  raspbian: "debian",
  fedora: "fedora",
  rhel: "rhel",
  redhat: "rhel",
  centos: "rhel",
  rocky: "rhel",
  almalinux: "rhel",
  oracle: "rhel",
  amazon: "rhel",
  scientific: "rhel",
  cloudlinux: "rhel",
  suse: "suse",
  opensuse: "suse",
  alpine: "alpine",
  arch: "arch",
  manjaro: "arch",
  gentoo: "gentoo",
  coreos: "coreos",
};
/** os-release IDs under the names gopsutil reports. */
const PLATFORM_ALIAS: Record<string, string> = { rhel: "redhat", ol: "oracle", amzn: "amazon", sles: "suse", "opensuse-leap": "opensuse", "opensuse-tumbleweed": "opensuse", archlinux: "arch" };

async function platformInfo(): Promise<{ platform: string; platformFamily: string; platformVersion: string }> {
  if (!isLinux) return { platform: process.platform === "win32" ? "Microsoft Windows" : process.platform, platformFamily: process.platform === "win32" ? "Standalone Workstation" : process.platform, platformVersion: os.release() };
  const release = new Map<string, string>();
  for (const line of (await textOr("/etc/os-release")).split("\n")) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) release.set(m[1], m[2].replace(/^"(.*)"$/, "$1"));
  }
  const id = (release.get("ID") ?? "").toLowerCase();
  const platform = PLATFORM_ALIAS[id] ?? id;
  const like = (release.get("ID_LIKE") ?? "").toLowerCase().split(/\s+/);
  const platformFamily = FAMILY[platform] ?? like.map((l) => FAMILY[PLATFORM_ALIAS[l] ?? l]).find(Boolean) ?? "";
  // Debian's point release lives in /etc/debian_version (os-release only has the major).
  const debianVersion = platform === "debian" ? (await textOr("/etc/debian_version")).trim() : "";
  return { platform, platformFamily, platformVersion: debianVersion || release.get("VERSION_ID") || "" };
}

async function virtualization(): Promise<{ system: string; role: string }> {
  if (!isLinux) return { system: "", role: "" };
  const exists = async (p: string) => (await textOr(p, "\0missing")) !== "\0missing";
  const cgroup = await textOr("/proc/self/cgroup");
  if ((await exists("/.dockerenv")) || cgroup.includes("docker")) return { system: "docker", role: "guest" };
  if (await exists("/run/.containerenv")) return { system: "podman", role: "guest" };
  if (cgroup.includes("lxc") || (await textOr("/proc/1/environ")).includes("container=lxc")) return { system: "lxc", role: "guest" };
  if (await exists("/proc/xen/capabilities")) return { system: "xen", role: (await textOr("/proc/xen/capabilities")).includes("control_d") ? "host" : "guest" };
  return { system: "", role: "" };
}

/** gopsutil's host ID: the DMI product UUID, else /etc/machine-id (UUID-formatted), else the boot ID. */
async function hostId(): Promise<string> {
  if (!isLinux) return "";
  const dmi = (await textOr("/sys/class/dmi/id/product_uuid")).trim();
  if (dmi) return dmi.toLowerCase();
  const machine = (await textOr("/etc/machine-id")).trim().toLowerCase();
  if (/^[0-9a-f]{32}$/.test(machine)) return `${machine.slice(0, 8)}-${machine.slice(8, 12)}-${machine.slice(12, 16)}-${machine.slice(16, 20)}-${machine.slice(20)}`;
  if (machine) return machine;
  return (await textOr("/proc/sys/kernel/random/boot_id")).trim().toLowerCase();
}

async function hostInfo(): Promise<Record<string, unknown>> {
  const uptime = Math.floor(os.uptime());
  let bootTime = Math.floor(Date.now() / 1000) - uptime;
  let procs = 0;
  if (isLinux) {
    const btime = /^btime\s+(\d+)$/m.exec(await textOr("/proc/stat"));
    if (btime) bootTime = int(btime[1]);
    procs = (await readdir("/proc")).filter((n) => /^\d+$/.test(n)).length;
  }
  const [p, v, id] = await Promise.all([platformInfo(), virtualization(), hostId()]);
  return {
    hostname: os.hostname(),
    uptime,
    bootTime,
    procs,
    os: process.platform === "win32" ? "windows" : process.platform,
    platform: p.platform,
    platformFamily: p.platformFamily,
    platformVersion: p.platformVersion,
    kernelVersion: os.release(),
    kernelArch: os.machine(),
    virtualizationSystem: v.system,
    virtualizationRole: v.role,
    hostId: id,
    hostid: id,
  };
}

// ---------------------------------------------------------------------------------------------
// memory: gopsutil mem.VirtualMemoryStat (bytes), plus the v2 spellings Vault keeps

/** /proc/meminfo key → gopsutil v3 field. Sizes are kB; the HugePages_* counts are plain numbers. */
const MEMINFO: [string, string, "kB" | "count"][] = [
  ["MemTotal", "total", "kB"],
  ["MemFree", "free", "kB"],
  ["MemAvailable", "available", "kB"],
  ["Buffers", "buffers", "kB"],
  ["Cached", "cached", "kB"],
  ["Active", "active", "kB"],
  ["Inactive", "inactive", "kB"],
  ["Writeback", "writeBack", "kB"],
  ["Dirty", "dirty", "kB"],
  ["WritebackTmp", "writeBackTmp", "kB"],
  ["Shmem", "shared", "kB"],
  ["Slab", "slab", "kB"],
  ["SReclaimable", "sreclaimable", "kB"],
  ["SUnreclaim", "sunreclaim", "kB"],
  ["PageTables", "pageTables", "kB"],
  ["SwapCached", "swapCached", "kB"],
  ["CommitLimit", "commitLimit", "kB"],
  ["Committed_AS", "committedAS", "kB"],
  ["HighTotal", "highTotal", "kB"],
  ["HighFree", "highFree", "kB"],
  ["LowTotal", "lowTotal", "kB"],
  ["LowFree", "lowFree", "kB"],
  ["SwapTotal", "swapTotal", "kB"],
  ["SwapFree", "swapFree", "kB"],
  ["Mapped", "mapped", "kB"],
  ["VmallocTotal", "vmallocTotal", "kB"],
  ["VmallocUsed", "vmallocUsed", "kB"],
  ["VmallocChunk", "vmallocChunk", "kB"],
  ["HugePages_Total", "hugePagesTotal", "count"],
  ["HugePages_Free", "hugePagesFree", "count"],
  ["HugePages_Rsvd", "hugePagesRsvd", "count"],
  ["HugePages_Surp", "hugePagesSurp", "count"],
  ["Hugepagesize", "hugePageSize", "kB"],
  ["AnonHugePages", "anonHugePages", "kB"],
];

/** The gopsutil v2 names Vault still sends beside the v3 ones (hashicorp/vault helper/hostutil). */
const V2_NAMES: [string, string][] = [
  ["commitLimit", "commitlimit"],
  ["committedAS", "committedas"],
  ["highFree", "highfree"],
  ["highTotal", "hightotal"],
  ["hugePagesFree", "hugepagesfree"],
  ["hugePageSize", "hugepagesize"],
  ["hugePagesTotal", "hugepagestotal"],
  ["lowFree", "lowfree"],
  ["lowTotal", "lowtotal"],
  ["pageTables", "pagetables"],
  ["swapCached", "swapcached"],
  ["swapFree", "swapfree"],
  ["swapTotal", "swaptotal"],
  ["vmallocChunk", "vmallocchunk"],
  ["vmallocTotal", "vmalloctotal"],
  ["vmallocUsed", "vmallocused"],
  ["writeBack", "writeback"],
  ["writeBackTmp", "writebacktmp"],
];

async function memory(): Promise<Record<string, number>> {
  const m: Record<string, number> = { total: 0, available: 0, used: 0, usedPercent: 0, free: 0, active: 0, inactive: 0, wired: 0, laundry: 0 };
  for (const [, field] of MEMINFO) m[field] ??= 0;
  const raw = isLinux ? colonFields(await textOr("/proc/meminfo")) : new Map<string, string>();
  if (raw.has("MemTotal")) {
    for (const [key, field, unit] of MEMINFO) {
      const v = raw.get(key);
      if (v !== undefined) m[field] = unit === "kB" ? int(v) * 1024 : int(v);
    }
    // gopsutil's arithmetic: reclaimable slab counts as cache, and "used" is what neither free,
    // buffers nor cache hold.
    m.cached += m.sreclaimable;
    if (!raw.has("MemAvailable")) m.available = m.free + m.buffers + m.cached;
    m.used = m.total - m.free - m.buffers - m.cached;
  } else {
    m.total = os.totalmem();
    m.free = os.freemem();
    m.available = m.free;
    m.used = m.total - m.free;
  }
  m.usedPercent = m.total > 0 ? (m.used / m.total) * 100 : 0;
  for (const [v3, v2] of V2_NAMES) m[v2] = m[v3];
  return m;
}

// ---------------------------------------------------------------------------------------------

/** Collects every section; a section that throws is omitted and reported as a warning. */
export async function collectHostInfo(): Promise<HandlerResponse> {
  const warnings: string[] = [];
  const data: Record<string, unknown> = { timestamp: new Date().toISOString() };
  const sections: [string, () => Promise<unknown>][] = [
    ["host", hostInfo],
    ["memory", memory],
    ["disk", () => diskUsage(warnings)],
    ["cpu", cpuInfo],
    ["cpu_times", cpuTimes],
  ];
  for (const [name, collect] of sections) {
    try {
      data[name] = await collect();
    } catch (err) {
      warnings.push(`unable to collect ${name} info: ${(err as Error).message}`);
    }
  }
  return warnings.length ? { data, warnings } : { data };
}

export function hostInfoPaths(): PathDefinition[] {
  return [
    {
      pattern: "host-info",
      operations: { read: { handler: collectHostInfo, summary: "Information about the host: CPU, CPU times, disks, host, memory." } },
    },
  ];
}
