/**
 * One error story: every error the library throws is a `FalconError` with a stable `code`.
 * Programs branch on `code` (or the class); people read `message`, which names the object,
 * the problem and the fix.
 */

/** Every code, with when it happens and what to do: the source of docs/reference.md's table. */
export const ERROR_CODES = {
  TOPOLOGY_DECLARATION: { when: 'a topology call was given something it cannot take (a duplicate name, an unknown node)', fix: 'the message names the call and the value; change the topology program' },
  TOPOLOGY_INVALID: { when: 'validate() or launch found problems in the topology; all are listed with their paths', fix: 'fix each listed problem in the topology program' },
  TOPOLOGY_FILE: { when: '.falcon/topology.json is missing, damaged or of another version', fix: 'launch the topology first, pass the right --falcon-dir, or destroy and launch again' },
  STATE_FILE: { when: '.falcon/state.json (what launch recorded) is damaged or of another version', fix: 'destroy the topology (destroy does not need the file) and launch it again' },
  NODE_NOT_FOUND: { when: 'a command named a node the topology does not have', fix: 'use one of the node names the message lists' },
  NODE_NOT_LAUNCHED: { when: 'a command needs a node that has not been launched', fix: 'run launch first' },
  NODE_NOT_RUNNING: { when: 'a command needs a running node and it is stopped', fix: 'start it with hyperstart NODE' },
  NODE_DISK_MISSING: { when: "a stopped node's disk is gone, so it cannot start again", fix: 'destroy the topology and launch it again' },
  BOOT_FAILED: { when: 'a node did not become ready: QEMU exited, or the guest did not answer in time', fix: 'read the log tail in the message; raise FALCON_BOOT_TIMEOUT for slow hosts' },
  GUEST_SETUP_FAILED: { when: "the guest's set-up script (hostname, mounts) failed", fix: 'the message has its output; check the mounts and the image' },
  LAUNCH_FAILED: { when: 'one or more nodes failed to launch; each is listed with the end of its logs', fix: 'run destroy to remove what was created, fix the cause, launch again' },
  PREFLIGHT: { when: 'the host or the topology is not ready; nothing was created', fix: 'fix each listed problem (each has its fix), or run falcon setup' },
  INVALID_ARGUMENT: { when: 'an option, flag or environment variable has a value Falcon cannot use', fix: 'the message names the option and the values it takes' },
  LOCK_BUSY: { when: 'another falcon command holds the topology (or image) lock', fix: 'wait for it to finish, or delete the lock file the message names if that process is not Falcon' },
  TIMEOUT: { when: 'a wait ran out of time', fix: 'the message says what was awaited; raise the timeout or look at the node' },
  GRAPHVIZ_MISSING: { when: "graph --format svg needs Graphviz's dot and it is not installed", fix: 'run falcon setup (it installs graphviz), or use --format dot or mermaid' },
  HOST_COMMAND_FAILED: { when: 'a host command (ip, tc, qemu-img, ...) failed; carries command, args, exit code and stderr', fix: 'read its stderr in the message' },
  NETWORK: { when: "the topology's host network cannot be created as declared; every problem is listed", fix: 'fix each listed problem (a missing host interface, a name taken by another topology)' },
  QMP: { when: 'QEMU refused a QMP command', fix: 'the message carries QEMU\'s error class and description' },
  QEMU_FAILED: { when: 'QEMU could not start or could not complete a job (a snapshot copy)', fix: 'read the QEMU error in the message and the node\'s .falcon/NODE.err log' },
  EXEC_FAILED: { when: 'succeed() ran a command that exited non-zero or was killed by a signal', fix: 'the message has the status and the end of stderr; the error carries stdout and stderr' },
  EXEC_TIMEOUT: { when: 'a command outlived its timeout and was killed; carries what it printed', fix: 'raise timeoutMs (exec -t) if it needs longer' },
  EXEC_NOT_RUNNING: { when: "the node's exec channel is not there: the node is stopped", fix: 'start it with hyperstart NODE' },
  EXEC_NO_ANSWER: { when: 'the exec channel is open but the agent did not answer', fix: 'the guest may still be booting or hung; look at its console (serial NODE)' },
  EXEC_BUSY: { when: "the exec socket's backlog stayed full", fix: 'run fewer execs at once' },
  EXEC_VERSION: { when: 'the guest agent speaks another protocol version', fix: 'rebuild the image with this Falcon (falcon image build NAME --force)' },
  EXEC_PROTOCOL: { when: 'the exec channel carried something that is not a valid frame', fix: 'report it; rebuild the image if its agent is old' },
  EXEC_CONNECTION_LOST: { when: 'the exec channel closed during a command (the node stopped or rebooted)', fix: 'run the command again once the node is up' },
  EXEC_AGENT_ERROR: { when: 'the guest agent could not run the command (fork failed, bad request)', fix: 'the message has the agent\'s reason' },
  EXEC_CLOSED: { when: 'an exec connection was used after it was closed', fix: 'open a new one (Runner.exec does this itself)' },
  EXEC_STDIN_UNSUPPORTED: { when: 'input was given for a node whose image has no falcon-agent (serial-login exec)', fix: 'use an image with the agent, or pass the data in the command' },
  CONSOLE_NOT_RUNNING: { when: "the node's console socket is not there: the node is stopped", fix: 'start it with hyperstart NODE' },
  CONSOLE_BUSY: { when: 'another client holds the serial console (QEMU serves one at a time)', fix: 'leave the other session (ctrl-q)' },
  CONSOLE_CLOSED: { when: "the node's console closed while Falcon used it (its QEMU exited)", fix: 'look at the node with info; hyperstart it if it stopped' },
  CONSOLE_CONNECT_FAILED: { when: 'connecting to a console socket failed for a reason other than the node being stopped (permissions, a damaged socket)', fix: 'the message has the system error' },
  CONSOLE_WAIT: { when: 'the console did not show what was awaited; carries the last output received', fix: 'read the output tail in the message' },
  DOWNLOAD_FAILED: { when: 'an image download failed (HTTP status, network)', fix: 'check the URL and the network' },
  IMAGE_INVALID_NAME: { when: 'an image name has characters other than letters, digits, ".", "_", "-"', fix: 'choose another name' },
  IMAGE_NOT_FOUND: { when: 'no image of that name is in the store and no recipe builds it', fix: 'falcon image list shows what there is; build, import or pull it' },
  IMAGE_EXISTS: { when: 'an image of that name exists already', fix: 'choose another name, or pass --force to replace it' },
  IMAGE_IN_USE: { when: 'an image is the backing file of node disks', fix: 'destroy those topologies first (the message names them)' },
  IMAGE_NOT_AN_IMAGE: { when: 'a file to import or pull is not a disk image', fix: 'check the file or URL' },
  IMAGE_CHECKSUM: { when: 'a pulled file does not match its sha256', fix: 'check the checksum and the URL' },
  IMAGE_NO_SPACE: { when: 'the image store ran out of disk space', fix: 'free space, or move the store with FALCON_IMAGE_DIR' },
  IMAGE_BAD_OPTION: { when: 'an image option does not fit (a kernel with UEFI, packages for a recipe that takes none)', fix: 'the message says which options go together' },
  IMAGE_UNKNOWN_RECIPE: { when: 'image build named a recipe Falcon does not have', fix: 'use one the message lists' },
  IMAGE_DAMAGED: { when: "an image's files or meta.json are damaged", fix: 'remove it (falcon image rm NAME --force) and build or import it again' },
  IMAGE_BUILD_FAILED: { when: 'an image recipe failed (a package that does not exist, a tool that failed)', fix: 'read the build output in the message' },
  NPU_CONFIG: { when: "a switch's config file is missing, damaged or has a value the switch cannot use", fix: 'the message names the file and the field; the runner writes it at launch' },
  NPU_CONTROL: { when: "a switch's control socket did not answer, or answered with an error", fix: 'start the switch (hyperstart), or read the error in the message' },
  NPU_NOT_A_SWITCH: { when: 'an npu command named a node that runs no SoftNPU switch', fix: 'name a node given softnpuLink(npu, ...) ports (info lists the switches)' },
  P4_SYNTAX: { when: 'a P4 program could not be read: the lexer or parser stopped at its first problem', fix: 'the message says what was expected at file:line:col' },
  P4_INCLUDE: { when: 'an #include names a file that is in none of the include folders', fix: 'the message lists the folders searched; fix the name or pass includePaths' },
  P4_CHECK: { when: 'the checker refused a P4 program; every problem is listed with its position', fix: 'fix each listed problem (file:line:col: what is wrong; the fix)' },
  NPU_PROGRAM: { when: 'a switch pipeline program could not be loaded (unknown name, a module without createPipeline)', fix: 'use a built-in program (sidecar-lite, wire, sidemux) or a module path exporting createPipeline(radix)' },
  NPU_SWITCH_FAILED: { when: 'a switch process exited or did not answer on its control socket after it was started', fix: "read the end of its log (.falcon/NODE.switch.log), quoted in the message" },
  NPU_TABLE: { when: 'a table entry was refused: unknown table or action, or keys or parameters of the wrong length', fix: 'the message names the table and the lengths it takes; the encoding helpers build valid entries' },
  CAPTURE_ENDPOINT: { when: 'capture named an endpoint the topology does not have (an unknown node, NIC index or altname), or one it cannot capture', fix: 'use node:index or an altname from the list in the message (info shows them)' },
  IMPAIR_TARGET: { when: 'impair named a link or endpoint the topology does not have, or one that cannot be impaired (external, SoftNPU and sidecar links)', fix: 'use nodeA--nodeB, node:index--node:index, links[N] or node:index from the list in the message' },
  IMPAIR_FAILED: { when: 'the impairment of a link could not be applied: the netem qdisc or the userspace helper (falcon-impair) failed', fix: 'read the tc error or the end of the helper log (.falcon/impair/LINK.log) quoted in the message' },
  WEB_SERVER: { when: 'the web view could not listen (the port is taken, or not a port)', fix: 'choose another port with --port N, or --port 0 for any free one' },
  WEB_REQUEST: { when: 'a request to the web view was refused: no or a wrong token (403), an unknown route or capture, or a body it cannot use', fix: 'open the URL the web command printed (it carries the token); the message says what the request lacked' },
  INIT_FAILED: { when: 'falcon init could not scaffold a project (the folder has files already)', fix: 'choose an empty or new folder' },
  K8S: { when: 'the Kubernetes API could not be reached or refused a request (kubeconfig, server, permissions)', fix: 'the message names the kubeconfig, context and server; check them with kubectl' },
  K8S_POD: { when: "a topology's pod on the cluster did not start, ended, or is gone", fix: 'the message gives the pod\'s phase and reason; kubectl describe pod shows more; hyperstart NODE makes it again' },
  INTERNAL: { when: 'Falcon hit a state it does not expect', fix: 'please report it with the message' },
} as const satisfies Record<string, { when: string; fix: string }>;

export type FalconErrorCode = keyof typeof ERROR_CODES;

/** Marks Falcon errors across copies of the package (a `Symbol.for` key is shared by all). */
const FALCON_ERROR = Symbol.for('falcon.error');

/**
 * The base of every error Falcon throws. `code` is stable and documented in
 * docs/reference.md; test with `isFalconError(e)`, which also holds for errors thrown by
 * another copy of the package, where `instanceof` does not.
 */
export class FalconError extends Error {
  override name = 'FalconError';
  readonly [FALCON_ERROR] = true;
  constructor(
    readonly code: FalconErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** True for any error thrown by Falcon, from this copy of the package or another. */
export function isFalconError(e: unknown): e is FalconError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[FALCON_ERROR] === true && typeof (e as { code?: unknown }).code === 'string';
}
