"""Seeded randomized runs of a simulated cluster: every fault decided by one Random.

``run_seed(seed, config)`` drives a cluster through ``config.ticks`` ticks of message loss,
duplication, delay and reordering, partitions (the leader isolated, random splits, rolling
changes), crashes between ticks and inside Readies (before the write, after it, right after a
granted vote), restarts (some after a repair), leadership transfers, reads and a steady stream
of client commands with sessions and retries. Then it heals everything and checks that the
cluster converges, that every value a client saw committed is in every member's state machine,
and (all along) that no member applied a value twice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from dqueue.raft import ConfChange, ConfChangeKind
from dqueue.raft.membership import apply_conf_change
from dqueue.sim.checker import InvariantViolation, check_queue
from dqueue.sim.clients import QueueWorkload, SimClients
from dqueue.sim.cluster import Cluster, ReadyFaults
from dqueue.sim.machine import encode_value
from dqueue.sim.network import LinkFaults


@dataclass(frozen=True)
class SimConfig:
    """One randomized run's shape. Rates are chances per tick.

    Attributes:
        size: number of members.
        ticks: ticks with faults, before the healing phase.
        faults: per-message network faults.
        partition_rate: chance of a partition change (isolate the leader, a random split,
            or a heal).
        crash_rate: chance that one live member crashes (between ticks).
        ready_faults: chances of a crash inside a Ready (``ReadyFaults``): before its write,
            after its write and before the remaining sends, right after a granted vote.
        restart_rate: chance, per crashed member, that it restarts.
        wipe_rate: chance, per restart, that the member comes back repaired: its log and
            snapshot wiped, term and vote kept (``Cluster.wipe``).
        propose_rate: chance that clients propose (1 to 3 new commands, each by a random
            client at a random live member).
        clients: simulated clients, each with its session (client id, seq).
        retry_ticks: a client re-sends a command not seen committed after this long, and
            every command in flight when a new leader is known.
        max_in_flight: commands one client has in flight at most.
        duplicates_expected: count values applied twice instead of failing the run.
        read_rate: chance of a ReadIndex request at a random live member.
        transfer_rate: chance that the leader is asked to transfer leadership.
        snapshot_every: members compact after this many applied entries (0: never).
        heal_ticks: ticks allowed to converge once every fault stops.
        raft_options: RaftConfig fields for every member.
        vary_flow_control: let the seed pick max_append_bytes and max_inflight_msgs
            (from one entry per append with one in flight, up to large batches), so that
            acknowledgements arrive entry by entry in some runs and in bulk in others.
        queue_workload: client values carry queue commands (``QueueWorkload``: named and
            FIFO queues, leases, acks, nacks, dead-letter moves) applied to each member's
            real ``QueueState``; False: bare values.
        spares: members started to join (no configuration) that the leader may add.
        member_change_rate: chance of a membership change at the leader (thesis 4.1): add
            a spare as a learner, promote a caught-up learner, or remove a member (the
            leader included). 0 (the default) draws nothing, so seeds keep their runs.
        crash_closes_connections: a crash closes the member's connections, as a killed
            process's do (``Raft.peer_lost`` on the members that can reach it); False: as a
            power cut, which the others notice only by the silence.
    """

    size: int = 5
    ticks: int = 2000
    faults: LinkFaults = field(default_factory=lambda: LinkFaults(
        drop=0.05, duplicate=0.02, delay=0.1, max_delay_ticks=4))
    partition_rate: float = 0.01
    crash_rate: float = 0.003
    ready_faults: ReadyFaults = field(default_factory=lambda: ReadyFaults(
        before_write=0.002, after_write=0.0005, after_vote=0.05))
    restart_rate: float = 0.03
    wipe_rate: float = 0.2
    propose_rate: float = 0.4
    clients: int = 4
    retry_ticks: int = 30
    max_in_flight: int = 8
    duplicates_expected: bool = False
    read_rate: float = 0.05
    transfer_rate: float = 0.002
    snapshot_every: int = 25
    heal_ticks: int = 400
    raft_options: dict[str, object] = field(
        # Chunks of 512 bytes: a queue state of a few hundred tasks (10-20 KB) still takes
        # dozens of chunks, and installs within the healing phase.
        default_factory=lambda: {"snapshot_chunk_bytes": 512, "max_append_bytes": 256,
                                 "max_inflight_msgs": 8})
    vary_flow_control: bool = True
    queue_workload: bool = True
    spares: int = 0
    member_change_rate: float = 0.0
    crash_closes_connections: bool = True


@dataclass
class SimResult:
    """Outcome of one seed.

    Attributes:
        seed: the seed.
        violation: the failed property and what was seen, or None.
        tick: the tick at which it failed (or the last tick run).
        events: the last events before the failure (only when traced).
        stats: figures of the run (values committed, elections, messages).
    """

    seed: int
    violation: str | None
    tick: int
    events: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)


class Run:
    """One randomized run in progress; ``execute`` raises InvariantViolation on failure."""

    def __init__(self, seed: int, config: SimConfig, trace: bool) -> None:
        self.config = config
        self.rng = random.Random(seed)
        options = dict(config.raft_options)
        if config.vary_flow_control:
            options["max_append_bytes"] = self.rng.choice((1, 16, 256, 1 << 20))
            options["max_inflight_msgs"] = self.rng.choice((1, 2, 8, 256))
        self.cluster = Cluster(config.size, self.rng, config.faults, config.snapshot_every,
                               trace, options, config.ready_faults, config.duplicates_expected,
                               config.spares, config.crash_closes_connections)
        self.sim_clients = SimClients(config.clients, config.retry_ticks, config.max_in_flight)
        # Its own Random: the fault schedule of a seed does not depend on the workload.
        self.workload = (QueueWorkload(random.Random(seed * 1_000_003 + 1))
                         if config.queue_workload else None)
        self.next_value = 0
        self.next_read = 0
        # ReadIndex linearizability: a read point must cover every commit known when asked.
        self.read_floor: dict[bytes, int] = {}

    def execute(self) -> None:
        """The faulty phase, then heal and check convergence."""
        cluster = self.cluster
        for _ in range(self.config.ticks):
            self.inject_faults()
            self.clients()
            cluster.tick()
            self.check_reads()
        self.heal_and_converge()

    def inject_faults(self) -> None:
        """Decide this tick's partitions, crashes, restarts and transfers."""
        rng = self.rng
        config = self.config
        cluster = self.cluster
        ids = cluster.ids
        if rng.random() < config.partition_rate:
            choice = rng.random()
            if choice < 0.35:
                leader = cluster.leader()
                if leader is not None:
                    cluster.network.isolate(leader, ids)
                    cluster.log_event(f"isolate leader {leader}")
            elif choice < 0.7:
                shuffled = list(ids)
                rng.shuffle(shuffled)
                cut = rng.randint(1, len(ids) - 1)
                cluster.network.partition([shuffled[:cut], shuffled[cut:]])
                cluster.log_event(f"partition {shuffled[:cut]} | {shuffled[cut:]}")
            else:
                cluster.network.heal()
                cluster.log_event("heal")
        if rng.random() < config.crash_rate:
            alive = cluster.alive()
            if alive:
                cluster.crash(rng.choice(alive))
        for node_id in ids:
            if cluster.nodes[node_id] is None and rng.random() < config.restart_rate:
                # A repair needs a healthy majority (docs/raft.md, "Repair"): a repaired
                # member neither votes nor campaigns until a leader brings it up to date, so
                # every configuration in force anywhere must keep a quorum of the others.
                # Counted on the members' own configurations, not on the last one a leader
                # was seen with: seed 30 of --membership wiped a voter of {n3, n5} because
                # the configuration last sampled (before two removals) still had 4 voters.
                if (rng.random() < config.wipe_rate
                        and cluster.can_spare(more=1)):
                    cluster.wipe(node_id)
                cluster.restart(node_id)
        if config.member_change_rate:
            cluster.retire_removed()
            if rng.random() < config.member_change_rate:
                self.change_membership()
        if rng.random() < config.transfer_rate:
            leader = cluster.leader()
            if leader is not None:
                target = rng.choice([i for i in ids if i != leader])
                cluster.log_event(f"transfer {leader} -> {target}")
                cluster.raft(leader).transfer_leadership(target)

    def change_membership(self) -> None:
        """One single-server change at the leader, when it may propose one (thesis 4.1)."""
        rng = self.rng
        cluster = self.cluster
        leader = cluster.leader()
        if leader is None:
            return
        raft = cluster.raft(leader)
        m = raft.membership
        choice = rng.random()
        spares = [i for i in cluster.ids if not cluster.ever_member(i)
                  and i not in cluster.retired and cluster.nodes[i] is not None]
        # Promotion only once caught up (4.2.1): the learner holds the commit index.
        progress = raft.status().progress
        ready = [i for i in m.learners if i in progress
                 and progress[i].match_index >= raft.log.committed]
        if choice < 0.35 and spares:
            change = ConfChange(ConfChangeKind.ADD_LEARNER, rng.choice(spares), b"addr")
        elif choice < 0.75 and ready:
            change = ConfChange(ConfChangeKind.PROMOTE, rng.choice(ready))
        else:
            # Down to two voters at least, so that runs keep some fault tolerance.
            removable = list(m.learners) + (list(m.voters) if len(m.voters) > 2 else [])
            if not removable:
                return
            change = ConfChange(ConfChangeKind.REMOVE, rng.choice(removable))
            # Nor a removal that leaves too few voters outside the members catching up
            # after a repair: no leader could be elected again (as for a wipe, above).
            after = apply_conf_change(m, change)
            if not cluster.can_spare(configs=[after]):
                return
        cluster.change_membership(leader, change)

    def clients(self) -> None:
        """Proposals and reads at random live members."""
        rng = self.rng
        cluster = self.cluster
        alive = cluster.alive()
        if not alive:
            return
        if rng.random() < self.config.propose_rate:
            for _ in range(rng.randint(1, 3)):
                number = self.next_value + 1
                command = (None if self.workload is None
                           else self.workload.command(number, cluster))
                if self.sim_clients.propose(cluster, rng, encode_value(number, command)):
                    self.next_value += 1
        self.sim_clients.retry(cluster, rng)
        if rng.random() < self.config.read_rate:
            self.next_read += 1
            context = b"r%d" % self.next_read
            self.read_floor[context] = cluster.checker.max_commit
            cluster.raft(rng.choice(alive)).read_index(context)

    def check_reads(self) -> None:
        """A ReadIndex answer must not be older than what was committed when it was asked."""
        for node_id, states in self.cluster.read_states.items():
            for state in states:
                floor = self.read_floor.get(state.context)
                if floor is None or state.index < floor:
                    raise InvariantViolation(
                        "read_index", f"{node_id} read {state.context!r} at {state.index}, "
                        f"but {floor} was committed when it was asked")
            states.clear()

    def heal_and_converge(self) -> None:
        """Stop every fault; all members must agree on one log holding every acked value."""
        cluster = self.cluster
        cluster.network.heal()
        cluster.network.faults = LinkFaults()
        cluster.ready_faults = ReadyFaults()
        for node_id in cluster.ids:
            cluster.restart(node_id)
        cluster.log_event("final heal")
        marker = b"final"
        deadline = cluster.now + self.config.heal_ticks
        while cluster.now < deadline:
            cluster.tick()
            leader = cluster.leader()
            if leader is None:
                continue
            if marker not in cluster.checker.acked:
                # Every tick until seen committed: one command, so the same seq each time.
                cluster.propose(leader, marker, ("final", 1, 1))
            if marker in cluster.checker.acked and self.converged():
                break
        else:
            raise InvariantViolation("liveness", f"no convergence {self.config.heal_ticks} "
                                     "ticks after healing every fault")
        acked = cluster.checker.acked
        final = self.final_members()
        for node_id in final:
            values = set(cluster.values(node_id))
            missing = acked - values
            if missing:
                raise InvariantViolation(
                    "acked_value_lost", f"{node_id} lacks {len(missing)} values a client saw "
                    f"committed, e.g. {sorted(missing)[:3]}")
        # The queue state machines applied the same log: the same state, bytes for bytes.
        first = final[0]
        expected = cluster.nodes[first].machine.queue.snapshot()
        for node_id in final:
            queue = cluster.nodes[node_id].machine.queue
            check_queue(node_id, queue)
            if queue.snapshot() != expected:
                raise InvariantViolation("queue_diverged", f"{node_id}'s queue state differs "
                                         f"from {first}'s after the same log")

    def converged(self) -> bool:
        """Every member applied the same last index, with the same values."""
        cluster = self.cluster
        nodes = [cluster.nodes[i] for i in self.final_members()]
        first = nodes[0]
        if first is None:
            return False
        return all(n is not None and n.applied == first.applied
                   and n.applied == n.raft.log.last_index() and n.values == first.values
                   for n in nodes)

    def final_members(self) -> tuple[str, ...]:
        """The members that must hold every acked value: voters and learners in force on the
        leader (every member when no leader is known)."""
        return self.cluster.members()

    def stats(self) -> dict[str, int]:
        """Figures of the run."""
        cluster = self.cluster
        return {
            "ticks": cluster.now,
            "proposed": self.next_value,
            "acked": len(cluster.checker.acked),
            "committed": cluster.checker.max_commit,
            "terms": len(cluster.checker.leaders),
            "messages": cluster.network.delivered,
            "wipes": cluster.wipes,
            "retries": self.sim_clients.retries,
            "answered_repeats": sum(n.machine.answered_repeats for n in cluster.nodes.values()
                                    if n is not None),
            "duplicates": cluster.checker.duplicates,
            **self.queue_stats(),
            "skipped_writes": sum(d.skipped_writes for d in cluster.disks.values()),
            **{f"crash_{point}": count for point, count in cluster.ready_crashes.items()},
            **{f"conf_{kind}": count for kind, count in cluster.conf_changes.items()},
            "retired": len(cluster.retired),
        }


    def queue_stats(self) -> dict[str, int]:
        """Tasks by status and queue in the first live member's queue state."""
        for node in self.cluster.nodes.values():
            if node is not None:
                by_queue = node.machine.queue.stats()["by_queue"]
                return {f"tasks_{name}_{status}": count
                        for name, counts in by_queue.items()
                        for status, count in counts.items()}
        return {}


def run_seed(seed: int, config: SimConfig | None = None, trace: bool = False,
             keep_events: int = 40) -> SimResult:
    """Run one seed; the same seed and config give the same run every time."""
    run = Run(seed, config or SimConfig(), trace)
    violation = None
    try:
        run.execute()
    except InvariantViolation as exc:
        violation = str(exc)
    except Exception as exc:  # a crash of the core is a failure of the run, not of the tool
        violation = f"exception: {exc.__class__.__name__}: {exc}"
    events = run.cluster.events[-keep_events:] if trace else []
    return SimResult(seed, violation, run.cluster.now, events, run.stats())
