----------------------------- MODULE BoundedRing -----------------------------
(***************************************************************************)
(* The bounded (lossless) ring: one publisher may write sequence s only    *)
(* while s < position + Watermark for every active subscriber record.     *)
(* The publisher caches the limit its last scan of the records gave and   *)
(* rescans at the limit or when the gate epoch moved (a subscriber         *)
(* joined). Blocked, it waits for room (resuming only once ResumeAt slots  *)
(* are free) and judges the subscribers that block it: a dead one is       *)
(* released, a stalled one (alive, not moving for the liveness timeout) is *)
(* evicted and told so on its next read. Subscribers join by claiming a    *)
(* record, mirroring a position, turning ACTIVE, bumping the epoch and     *)
(* re-reading the cursor; they may stall, resume, crash or leave.          *)
(*                                                                         *)
(* Durable subscribers (durable stages, the set Durable) hand slots back   *)
(* only as they process messages: their Mirror publishes their committed  *)
(* progress, which moves at Commit, the first step of their next receive  *)
(* (a message counts as processed once the stage asks for the next one; a *)
(* batch read commits once, then reads several); a message read but not   *)
(* yet committed is unprocessed. A dead durable subscriber keeps its       *)
(* place: never released, it is judged like a stalled one (evicted once it *)
(* blocks the publisher), and Takeover (its successor attaching under the  *)
(* same stage name) restarts it with the record still active, reading      *)
(* again from its committed progress.                                      *)
(*                                                                         *)
(* Mirrors publish/bounded.rs (Room, wait_for_room), protocol/room.rs,     *)
(* publish/single.rs (reserve, write), subscribe/ (attach, read_one,       *)
(* commit, mirror), shm/ring/records.rs (keeps_place, try_claim_record     *)
(* with take_place) and the reader of RingReader.tla. Time is abstract:    *)
(* "stalled" stands for "has not moved for the liveness timeout", and a    *)
(* blocked publisher waits (parks) until room or a judgement is possible.  *)
(*                                                                         *)
(* Mutants (one configuration each under mutants/):                        *)
(*   "stale_gate"   the publisher ignores the gate epoch and keeps its     *)
(*                  cached limit: a joining subscriber's cursor is ignored; *)
(*   "judge_first"  a blocked publisher judges the subscribers that block  *)
(*                  its next sequence, not the one it waits to resume at;  *)
(*   "keep_dead"    a blocked publisher never releases dead subscribers;   *)
(*   "release_durable" a dead durable subscriber is released at once like  *)
(*                  a plain one (the code before durable stages): its      *)
(*                  unprocessed messages are overwritten;                  *)
(*   "mirror_on_read" a durable subscriber mirrors its read position, not  *)
(*                  its committed one: its successor finds unprocessed     *)
(*                  messages overwritten.                                  *)
(***************************************************************************)
EXTENDS Integers, Sequences, FiniteSets, RingStamps

CONSTANTS Words, Messages, NumSubscribers,
          Watermark,   \* publishers stay below position + Watermark
          ResumeAt,    \* free slots a blocked publisher waits for
          MaxStalls,   \* subscribers that may stall in one behaviour
          MaxCrashes,  \* subscribers that may crash in one behaviour
          Durable,     \* durable subscribers (durable stages)
          MaxTakeovers, \* dead durable subscribers that may be restarted in one behaviour
          Mutant

ASSUME Words \in Nat /\ Messages \in Nat /\ NumSubscribers \in Nat
ASSUME Watermark \in 1 .. Capacity /\ ResumeAt \in 1 .. Watermark
ASSUME MaxStalls \in Nat /\ MaxCrashes \in Nat /\ MaxTakeovers \in Nat
ASSUME Mutant \in {"none", "skip_recheck", "stale_gate", "judge_first", "keep_dead",
                   "release_durable", "mirror_on_read"}

Subscribers == 1 .. NumSubscribers
ASSUME Durable \subseteq Subscribers
Readers == Subscribers
NoLimit == Messages + Capacity + Watermark   \* room::limit of a ring nobody gates

VARIABLES stamp, word, cursor,
          wpc,        \* the publisher's next step
          ww,         \* unused here (writes are one step)
          batchEnd,   \* end of the stretch it reserved
          limit,      \* Room.limit: first sequence not writable, as last scanned
          epochSeen,  \* Room.epoch: the gate epoch the last scan saw
          scanIdx,    \* next record the scan looks at
          scanMin,    \* slowest active position seen by the scan so far
          scanTarget, \* the sequence the scan judges blockers of (-1: none)
          scanNext,   \* where the publisher goes after the scan
          epoch,      \* table.epoch
          recState,   \* recState[r]: "free", "joining", "active", "evicted"
          recPos,     \* recPos[r]: the position mirrored into r's record
          committed,  \* committed[r]: a durable r's committed progress (the record's
                      \* `processed`; what its successor resumes at); 0 for others
          mode,       \* mode[r]: "running", "stalled", "dead"
          joinAt,     \* joinAt[r]: the cursor r read when attaching
          stalls, crashes, takeovers,
          rpc, pos, start, first, rw, seen, got, lost, abandoned

R == INSTANCE RingReader WITH AfterRead <- "mirror"

readerVars == <<rpc, pos, start, first, rw, seen, got, lost, abandoned>>
publisherVars == <<wpc, ww, batchEnd, limit, epochSeen, scanIdx, scanMin, scanTarget, scanNext>>
recordVars == <<epoch, recState, recPos, committed>>
subscriberVars == <<mode, joinAt, stalls, crashes, takeovers>>
ringVars == <<stamp, word, cursor>>
vars == <<ringVars, publisherVars, recordVars, subscriberVars, readerVars>>

Init ==
    /\ stamp = [i \in Slots |-> Empty]
    /\ word = [i \in Slots |-> [w \in 0 .. Words |-> NoData]]
    /\ cursor = 0
    /\ wpc = "reserve" /\ ww = 0 /\ batchEnd = 0
    /\ limit = NoLimit /\ epochSeen = 0
    /\ scanIdx = 1 /\ scanMin = NoLimit /\ scanTarget = -1 /\ scanNext = "room"
    /\ epoch = 0
    /\ recState = [r \in Subscribers |-> "free"]
    /\ recPos = [r \in Subscribers |-> 0]
    /\ committed = [r \in Subscribers |-> 0]
    /\ mode = [r \in Subscribers |-> "running"]
    /\ joinAt = [r \in Subscribers |-> 0]
    /\ stalls = 0 /\ crashes = 0 /\ takeovers = 0
    /\ R!ReaderInit

Blocks(position, seq) == seq >= position + Watermark     \* room::blocks
GateLimit(slowest) == IF slowest = NoLimit THEN NoLimit ELSE slowest + Watermark

(* RingMap::keeps_place: a dead durable subscriber's active record keeps  *)
(* gating; the publisher judges it as if its owner were alive.            *)
KeepsPlace(r) == r \in Durable /\ Mutant # "release_durable"

(***************************************************************************)
(* The publisher                                                           *)
(***************************************************************************)
StartScan(target, next) ==
    /\ wpc' = "scan"
    /\ epochSeen' = epoch          \* rescan reads the epoch first
    /\ scanIdx' = 1 /\ scanMin' = NoLimit
    /\ scanTarget' = target /\ scanNext' = next

(* Room::room: rescan at the cached limit or when the epoch moved. *)
Reserve ==
    /\ wpc = "reserve" /\ cursor < Messages
    /\ IF cursor >= limit \/ (epoch # epochSeen /\ Mutant # "stale_gate")
          THEN StartScan(-1, "room")
          ELSE wpc' = "room" /\ UNCHANGED <<epochSeen, scanIdx, scanMin, scanTarget, scanNext>>
    /\ UNCHANGED <<ringVars, ww, batchEnd, limit, recordVars, subscriberVars, readerVars>>

(* Room::rescan, one record per step; with a target, blocking subscribers *)
(* are judged (room::Progress::judge): dead ones released, stalled ones   *)
(* evicted, live ones waited for. A dead durable one is judged alive      *)
(* (keeps_place): like a stalled one, it is evicted, never released.      *)
ScanRecord ==
    /\ wpc = "scan"
    /\ LET i == scanIdx IN
       IF i > NumSubscribers
          THEN /\ limit' = GateLimit(scanMin)
               /\ wpc' = scanNext
               \* the scan's scratch state is forgotten
               /\ scanIdx' = 1 /\ scanMin' = NoLimit /\ scanTarget' = -1
               /\ scanNext' = "room"
               /\ UNCHANGED recState
          ELSE /\ scanIdx' = i + 1
               /\ UNCHANGED <<limit, wpc, scanTarget, scanNext>>
               /\ CASE recState[i] # "active" ->
                         UNCHANGED <<scanMin, recState>>
                    [] scanTarget >= 0 /\ Blocks(recPos[i], scanTarget)
                         /\ mode[i] = "dead" /\ ~KeepsPlace(i) /\ Mutant # "keep_dead" ->
                         /\ recState' = [recState EXCEPT ![i] = "free"]
                         /\ UNCHANGED scanMin
                    [] scanTarget >= 0 /\ Blocks(recPos[i], scanTarget)
                         /\ (mode[i] = "stalled" \/ (mode[i] = "dead" /\ KeepsPlace(i))) ->
                         /\ recState' = [recState EXCEPT ![i] = "evicted"]
                         /\ UNCHANGED scanMin
                    [] OTHER ->
                         /\ scanMin' = Min(scanMin, recPos[i])
                         /\ UNCHANGED recState
    /\ UNCHANGED <<ringVars, ww, batchEnd, epochSeen, epoch, recPos, committed,
                   subscriberVars, readerVars>>

(* room::room: reserve a stretch of at most Watermark messages that fit. *)
Room ==
    /\ wpc = "room"
    /\ LET n == Min(Min(limit - cursor, Watermark), Messages - cursor) IN
       IF n > 0
          THEN \E k \in 1 .. n : batchEnd' = cursor + k /\ wpc' = "begin"
          ELSE wpc' = "wait" /\ UNCHANGED batchEnd
    /\ UNCHANGED <<ringVars, ww, limit, epochSeen, scanIdx, scanMin, scanTarget, scanNext,
                   recordVars, subscriberVars, readerVars>>

(* wait_for_room: the sequence whose blockers are judged. *)
JudgeTarget == IF Mutant = "judge_first" THEN cursor ELSE cursor + ResumeAt - 1

(* What the records say right now (the condition a parked publisher is   *)
(* woken for: a subscriber moved, or the judging timer finds a blocker    *)
(* dead or stalled).                                                      *)
SlowestNow ==
    LET active == {recPos[r] : r \in {s \in Subscribers : recState[s] = "active"}}
    IN IF active = {} THEN NoLimit ELSE CHOOSE p \in active : \A q \in active : p <= q
Judgeable(r) ==
    /\ recState[r] = "active" /\ Blocks(recPos[r], JudgeTarget)
    /\ \/ mode[r] = "stalled"
       \/ mode[r] = "dead" /\ KeepsPlace(r)
       \/ mode[r] = "dead" /\ Mutant # "keep_dead"

Wait ==
    /\ wpc = "wait"
    /\ GateLimit(SlowestNow) - cursor >= ResumeAt \/ \E r \in Subscribers : Judgeable(r)
    /\ StartScan(JudgeTarget, "resume")
    /\ UNCHANGED <<ringVars, ww, batchEnd, limit, recordVars, subscriberVars, readerVars>>

(* Hysteresis: resume only once ResumeAt slots are free. *)
Resume ==
    /\ wpc = "resume"
    /\ wpc' = IF limit - cursor >= ResumeAt THEN "reserve" ELSE "wait"
    /\ UNCHANGED <<ringVars, ww, batchEnd, limit, epochSeen, scanIdx, scanMin, scanTarget,
                   scanNext, recordVars, subscriberVars, readerVars>>

(* Begin, WritePayload and Commit of message `cursor` in one step: how a *)
(* copy can be torn is SpmcRing's subject; here only which messages are   *)
(* overwritten matters. Advance stays a step of its own (attaching        *)
(* subscribers read the cursor).                                          *)
Slot == SlotOf(cursor)
Write ==
    /\ \/ wpc = "begin"
          /\ stamp' = [stamp EXCEPT ![Slot] = Complete(cursor)]
          /\ word' = [word EXCEPT ![Slot] = [w \in 0 .. Words |-> cursor]]
          /\ wpc' = "advance"
          /\ UNCHANGED <<cursor, batchEnd>>
       \/ wpc = "advance"
          /\ cursor' = cursor + 1
          /\ wpc' = (IF cursor + 1 < batchEnd THEN "begin" ELSE "reserve")
          /\ batchEnd' = (IF cursor + 1 < batchEnd THEN batchEnd ELSE 0)
          /\ UNCHANGED <<stamp, word>>
    /\ UNCHANGED <<ww, limit, epochSeen, scanIdx, scanMin, scanTarget, scanNext,
                   recordVars, subscriberVars, readerVars>>

PublisherStep == Reserve \/ ScanRecord \/ Room \/ Wait \/ Resume \/ Write

(***************************************************************************)
(* Subscribers (Subscriber::attach with Start::Latest, read_one, commit,  *)
(* mirror; a durable stage's successor attaching with Start::Resume)      *)
(***************************************************************************)
SetRpc(r, step) == rpc' = [rpc EXCEPT ![r] = step]
(* For a durable subscriber a start is also its committed progress (the  *)
(* stage's first commit_progress, and Latest's re-read commits).          *)
Position(r, p) ==
    /\ pos' = [pos EXCEPT ![r] = p]
    /\ start' = [start EXCEPT ![r] = p]
    /\ recPos' = [recPos EXCEPT ![r] = p]
    /\ committed' = [committed EXCEPT ![r] = IF r \in Durable THEN p ELSE @]

JoinStep(r) ==
    \/ rpc[r] = "join_claim" /\ recState[r] = "free"     \* claim_record
       /\ recState' = [recState EXCEPT ![r] = "joining"] /\ SetRpc(r, "join_mirror")
       /\ UNCHANGED <<epoch, recPos, committed, pos, start>>
    \/ rpc[r] = "join_mirror" /\ Position(r, joinAt[r])  \* the first mirror()
       /\ SetRpc(r, "join_active") /\ UNCHANGED <<epoch, recState>>
    \/ rpc[r] = "join_active"
       /\ recState' = [recState EXCEPT ![r] = "active"] /\ SetRpc(r, "join_epoch")
       /\ UNCHANGED <<epoch, recPos, committed, pos, start>>
    \/ rpc[r] = "join_epoch" /\ epoch' = epoch + 1        \* + membarrier
       /\ SetRpc(r, "join_reread") /\ UNCHANGED <<recState, recPos, committed, pos, start>>
    \/ rpc[r] = "join_reread" /\ Position(r, Max(cursor, joinAt[r]))
       /\ SetRpc(r, "check") /\ UNCHANGED <<epoch, recState>>

(* The cursor read at attach is forgotten once the start is settled. *)
ForgetsJoinAt(r) ==
    joinAt' = IF rpc[r] = "join_reread" THEN [joinAt EXCEPT ![r] = 0] ELSE joinAt

(* Attach: load the cursor first (Start::Latest). *)
Attach(r) ==
    /\ rpc[r] = "out" /\ mode[r] = "running"
    /\ joinAt' = [joinAt EXCEPT ![r] = cursor]
    /\ SetRpc(r, "join_claim")
    /\ UNCHANGED <<ringVars, publisherVars, recordVars, mode, stalls, crashes, takeovers,
                   pos, start, first, rw, seen, got, lost, abandoned>>

Join(r) ==
    /\ mode[r] = "running" /\ JoinStep(r) /\ ForgetsJoinAt(r)
    /\ UNCHANGED <<ringVars, publisherVars, mode, stalls, crashes, takeovers,
                   first, rw, seen, got, lost, abandoned>>

(* A durable subscriber has read, but not processed, the messages from   *)
(* its committed progress to its position.                                 *)
Uncommitted(r) == r \in Durable /\ committed[r] # pos[r]

(* read_one: an evicted subscriber is told so before it reads. A durable  *)
(* one with messages read but not committed either reads on (a batch read, *)
(* try_recv_rows, commits once, then reads many) or commits (Commit, the   *)
(* first step of its next receive).                                        *)
Read(r) ==
    /\ mode[r] = "running"
    /\ \/ rpc[r] = "check" /\ recState[r] = "evicted" /\ SetRpc(r, "evicted")
          /\ UNCHANGED <<pos, start, first, rw, seen, got, lost, abandoned>>
       \/ rpc[r] = "check" /\ recState[r] # "evicted" /\ R!ReadStep(r)
       \/ rpc[r] # "check" /\ R!ReadStep(r)
    /\ UNCHANGED <<ringVars, publisherVars, recordVars, subscriberVars>>

(* Subscriber::commit of a durable subscriber (commit_progress of its     *)
(* position): what it read is processed; its mirror follows.               *)
Commit(r) ==
    /\ mode[r] = "running" /\ rpc[r] = "check" /\ Uncommitted(r)
    /\ committed' = [committed EXCEPT ![r] = pos[r]]
    /\ SetRpc(r, "mirror")
    /\ UNCHANGED <<ringVars, publisherVars, epoch, recState, recPos, subscriberVars,
                   pos, start, first, rw, seen, got, lost, abandoned>>

(* mirror: hand the slots read back to the publisher; a durable          *)
(* subscriber hands back only what it committed. Read and Mirror being     *)
(* separate steps, a plain subscriber's record lags its reads by a step;  *)
(* a durable one's lags until its next Commit.                            *)
Mirror(r) ==
    /\ mode[r] = "running" /\ rpc[r] = "mirror"
    /\ recPos' = [recPos EXCEPT ![r] =
                      IF r \in Durable /\ Mutant # "mirror_on_read" THEN committed[r] ELSE pos[r]]
    /\ SetRpc(r, "check")
    /\ UNCHANGED <<ringVars, publisherVars, epoch, recState, committed, subscriberVars,
                   pos, start, first, rw, seen, got, lost, abandoned>>

(* Subscriber::close. *)
Leave(r) ==
    /\ mode[r] = "running" /\ rpc[r] = "check" /\ recState[r] = "active"
    /\ recState' = [recState EXCEPT ![r] = "free"]
    /\ SetRpc(r, "gone")
    /\ UNCHANGED <<ringVars, publisherVars, epoch, recPos, committed, subscriberVars,
                   pos, start, first, rw, seen, got, lost, abandoned>>

Attached(r) == rpc[r] \notin {"out", "gone", "evicted"}
Attaching(r) == rpc[r] \in {"out", "join_claim", "join_mirror", "join_active", "join_epoch",
                             "join_reread"}

(* A subscriber stops moving (descheduled, SIGSTOP, a debugger) ... *)
Stall(r) ==
    /\ mode[r] = "running" /\ Attached(r) /\ stalls < MaxStalls
    /\ mode' = [mode EXCEPT ![r] = "stalled"] /\ stalls' = stalls + 1
    /\ UNCHANGED <<ringVars, publisherVars, recordVars, joinAt, crashes, takeovers, readerVars>>

(* ... and comes back after it was evicted. *)
Wake(r) ==
    /\ mode[r] = "stalled" /\ recState[r] = "evicted"
    /\ mode' = [mode EXCEPT ![r] = "running"]
    /\ UNCHANGED <<ringVars, publisherVars, recordVars, joinAt, stalls, crashes, takeovers,
                   readerVars>>

(* A subscriber dies (its record lock goes with it). *)
Crash(r) ==
    /\ mode[r] # "dead" /\ Attached(r) /\ crashes < MaxCrashes
    /\ mode' = [mode EXCEPT ![r] = "dead"] /\ crashes' = crashes + 1
    /\ UNCHANGED <<ringVars, publisherVars, recordVars, joinAt, stalls, takeovers, readerVars>>

(* A dead durable subscriber's successor attaches under its stage name    *)
(* with Start::Resume and takes the record back (claim_record,            *)
(* try_claim_record with take_place): the record stays active at its      *)
(* position throughout; the successor mirrors its committed progress,     *)
(* bumps the epoch and reads on from there. One step: the record gates    *)
(* the publisher all along, so their order decides nothing. The ghost log *)
(* keeps what was processed and forgets what was read but not processed   *)
(* (it is read again); the loss count goes on, so LossOnlyIfEvicted says  *)
(* the successor loses nothing. A stage that died while attaching is not  *)
(* taken over here: it had read nothing (see README.md).                   *)
Takeover(r) ==
    /\ r \in Durable /\ mode[r] = "dead" /\ recState[r] = "active" /\ ~Attaching(r)
    /\ takeovers < MaxTakeovers
    /\ mode' = [mode EXCEPT ![r] = "running"] /\ takeovers' = takeovers + 1
    /\ recPos' = [recPos EXCEPT ![r] = committed[r]]
    /\ epoch' = epoch + 1
    /\ rpc' = [rpc EXCEPT ![r] = "check"]
    /\ pos' = [pos EXCEPT ![r] = committed[r]]
    /\ got' = [got EXCEPT ![r] = SelectSeq(@, LAMBDA m : m.seq < committed[r])]
    /\ first' = [first EXCEPT ![r] = Empty]
    /\ rw' = [rw EXCEPT ![r] = 0]
    /\ seen' = [seen EXCEPT ![r] = [w \in 0 .. Words |-> NoData]]
    /\ UNCHANGED <<ringVars, publisherVars, recState, committed, joinAt, stalls, crashes,
                   start, lost, abandoned>>

SubscriberProgress(r) == Join(r) \/ Read(r) \/ Commit(r) \/ Mirror(r)

Finished ==
    /\ cursor = Messages /\ wpc = "reserve"
    /\ \A r \in Subscribers :
           \/ rpc[r] \in {"out", "gone", "evicted"}
           \/ mode[r] # "running"
           \/ rpc[r] = "check" /\ pos[r] = Messages
    /\ UNCHANGED vars

Next ==
    \/ PublisherStep
    \/ \E r \in Subscribers :
           \/ Attach(r) \/ SubscriberProgress(r) \/ Leave(r)
           \/ Stall(r) \/ Wake(r) \/ Crash(r) \/ Takeover(r)
    \/ Finished

Fairness ==
    /\ WF_vars(PublisherStep)
    /\ \A r \in Subscribers : WF_vars(SubscriberProgress(r))

Spec == Init /\ [][Next]_vars
FairSpec == Spec /\ Fairness

(***************************************************************************)
(* Properties                                                              *)
(***************************************************************************)
NoTornAccept == R!NoTornAccept
InOrder == R!InOrder
Accounted == R!Accounted
StampsCovered == R!StampsCovered

(* The publisher never overwrites (or starts overwriting) a message that  *)
(* a live registered subscriber has not read: every stamp is of a message *)
(* less than a ring ahead of the subscriber's mirrored position. While it  *)
(* attaches, a subscriber has read nothing and its Latest start is not     *)
(* settled until it re-reads the cursor after the epoch bump. For a       *)
(* durable subscriber "read" means "processed" (from its committed        *)
(* progress on, nothing may be overwritten), and the guarantee outlives   *)
(* its death: only eviction ends it. Its record is never freed while it is *)
(* dead; a freed one still counts here (mutant release_durable).          *)
HeldFrom(r) == IF r \in Durable THEN committed[r] ELSE recPos[r]
Registered(r) ==
    \/ recState[r] = "active" /\ mode[r] # "dead"
    \/ r \in Durable /\ mode[r] = "dead" /\ recState[r] # "evicted"
NoOverwriteOfUnread ==
    \A r \in Subscribers :
        Registered(r) /\ ~Attaching(r) =>
            \A i \in Slots : stamp[i] = Empty \/ SeqOf(stamp[i]) < HeldFrom(r) + Capacity

(* Nothing is lost by a subscriber that was not evicted; this includes a *)
(* durable subscriber that was taken over: its ghost log and               *)
(* loss count run on across its incarnations, so with InOrder and          *)
(* Accounted the messages its incarnations processed are every message    *)
(* from its start, each once.                                              *)
LossOnlyIfEvicted == \A r \in Subscribers : lost[r] > 0 => recState[r] = "evicted"

(* Liveness: everything gets published (dead and stalled subscribers do   *)
(* not hold the publisher forever), and a subscriber that keeps running   *)
(* reads every message unless it leaves or was evicted.                   *)
AllPublished == <>(cursor = Messages)
EveryMessageRead ==
    \A r \in Subscribers :
        (rpc[r] = "check") ~>
            (pos[r] = Messages \/ mode[r] # "running" \/ rpc[r] \in {"gone", "evicted"})
=============================================================================
