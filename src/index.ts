/**
 * Falcon: network topologies of virtual machines as code, on Linux.
 *
 * ```ts
 * import { Runner, gb, run } from 'falcon';
 * const d = new Runner('duo');
 * const violin = d.node('violin', 'tiny', 1, gb(1));
 * const piano = d.node('piano', 'tiny', 1, gb(1));
 * d.link(violin, piano);
 * await run(d);
 * ```
 */
// Each export comes from a module that loads little: what an operation needs beyond that (the
// Kubernetes client, the web server, image builders, launch, capture...) loads when it runs, so
// `import { Runner, run } from 'falcon'` stays cheap for `exec` and `info` (docs/performance.md).
export { Runner, LaunchError, kubernetes } from './runner/runner.js';
export type { Backend, KubernetesBackend, K8sInfo, PodInfo, SerialConsole } from './runner/runner.js';
export type { RunnerOptions, TopologyInfo, NodeInfo, LinkInfo } from './runner/runner.js';
export { NpuControl } from './runner/npu-control.js';
export type { SwitchInfo, LinkEndInfo } from './runner/switches.js';
export type { SoftnpuOptions, SmbiosType1 } from './model/spec.js';
export { PreflightError } from './runner/errors.js';
export { StateFileError } from './runner/state.js';
export { renderGraph, parseGraphFormat, topologyGraph, toMermaid, toDot, toJson, GRAPH_FORMATS } from './graph/index.js';
export type { GraphFormat, GraphOptions, RenderGraphOptions, TopologyGraph, GraphNode, GraphEdge, GraphEnd } from './graph/index.js';
export { startWebServer, WebRequestError, webView } from './web/index.js';
export type { WebServer, WebServerOptions, WebTopology, WebView, ViewEdge, ViewNode, ViewEndpoint } from './web/index.js';
export { run, runWithExtra, runCli } from './cli/program.js';
export type { ExtraCommand, RunMode } from './cli/program.js';
export { attachSerial } from './cli/serial-attach.js';
export { cmd } from './runner/cmd.js';
export { DEFAULT_FALCON_DIR } from './runner/paths.js';
export type { ExecDumpOptions, DumpTarget } from './runner/runner.js';
export { execOverSerial } from './guest/serial-exec.js';
export { Topology, Node, Disk, gb, mb } from './model/topology.js';
export type { NodeRef, LinkOptions, DiskOptions, QemuDeviceOptions } from './model/topology.js';
export { nicCount } from './model/nics.js';
export { PCI, MAX_DISKS } from './model/pci.js';
export type { DiskSpec, QemuDeviceSpec } from './model/spec.js';
export { TopologyError, TopologyValidationError, TopologyFileError } from './model/errors.js';
export type { TopologyProblem } from './model/errors.js';
export type { TopologySpec, NodeSpec, LinkSpec } from './model/spec.js';
export { HostCommandError } from './host/process.js';
export { FalconError, isFalconError, ERROR_CODES } from './util/errors.js';
export { TimeoutError } from './util/abort.js';
export { LockBusyError } from './util/lock.js';
export { QmpError } from './host/qmp.js';
export { NetworkError } from './host/net-plan.js';
export { ExecChannelError, ExecTimeoutError, ExecError } from './guest/exec-types.js';
export type { ExecChannelErrorCode, ExecOptions, ExecTextOptions, ExecBufferOptions, ExecEncoding } from './guest/exec-types.js';
export { ProtocolError } from './guest/exec-protocol.js';
export { ConsoleNotRunningError, ConsoleBusyError, ConsoleWaitError } from './guest/console.js';
export { ImageError } from './images/store.js';
export type { ImageErrorCode } from './images/store.js';
export { DownloadError } from './images/download.js';
export type { FalconErrorCode } from './util/errors.js';
export type { ExecResult } from './guest/exec-types.js';
export { ImageStore } from './images/store.js';
export { exportRef } from './images/oci-ref.js';
export { buildNodeImage } from './k8s/build-node-image.js';
export type { ImageMeta } from './images/types.js';
export { consoleLogger, memoryLogger, silentLogger } from './util/log.js';
export type { Logger, LogEvent, Level } from './util/log.js';
export type { CaptureOptions, CaptureResult } from './runner/capture.js';
export { captureEndpoints, resolveEndpoint } from './model/capture.js';
export type { CaptureEndpoint } from './model/capture.js';
export { PcapReader, readPcap, readPcapng, summarizeFrame } from './host/pcap.js';
export type { PcapPacket, PcapHeader, Pcapng } from './host/pcap.js';
export { parseDuration, parsePercent, parseRate, formatImpairment, resolveImpairTarget, IMPAIRMENT_FIELDS } from './model/impair.js';
export type { Impairment, LinkImpairment, DirectedImpairment, ImpairTarget } from './model/impair.js';
export type { ImpairStatus, ImpairDirectionStatus } from './runner/impairments.js';
export type { ImpairPath, HelperDirectionStats } from './host/impair.js';
export { impairTapName } from './model/naming.js';
