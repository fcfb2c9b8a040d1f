----------------------------- MODULE StagedRing -----------------------------
(***************************************************************************)
(* Stages and gating (the dependency barrier, crates/ringcast-core/src/    *)
(* subscribe/stage.rs) on the single-producer ring of SpmcRing.tla: stage readers    *)
(* publish how far they have processed (Commit: processed := pos after     *)
(* handling what they accepted; protocol::commit_progress), and a gated    *)
(* reader loads each upstream stage's progress (GateLoad;                  *)
(* protocol::load_progress) and begins a read only below the smallest      *)
(* progress it loaded (protocol::try_read_below). Stages attach late, and  *)
(* crash or leave at any step; their progress stays in the ring (holding   *)
(* the gated reader back), and a stage comes back with start="resume" at   *)
(* that progress. A stage that never attached holds the gate at 0.         *)
(*                                                                         *)
(* The publisher is SpmcRing's (its steps, no reader of its own).          *)
(*                                                                         *)
(* Mutants (Mutant constant, one configuration each under mutants/):       *)
(*   "commit_on_read"  a stage publishes progress as soon as it has read a *)
(*                     message, before handling it;                        *)
(*   "ignore_gate"     the gated reader reads without looking at the gate. *)
(* Each must break GatedAfterStages.                                       *)
(***************************************************************************)
EXTENDS Integers, Sequences, FiniteSets, RingStamps

CONSTANTS Words, Messages,
          NumStages,   \* stage readers 1 .. NumStages; reader 0 is gated after all of them
          Mutant

ASSUME Words \in Nat \ {0} /\ Messages \in Nat /\ NumStages \in Nat \ {0}
ASSUME Mutant \in {"none", "commit_on_read", "ignore_gate"}

Stages == 1 .. NumStages
Gated == 0
Readers == {Gated} \cup Stages

VARIABLES stamp, word, cursor, wpc, ww,
          rpc, pos, start, first, rw, seen, got, lost, abandoned,
          processed,   \* processed[b]: stage b's published progress (record line 2)
          handled,     \* handled[b]: sequences b accepted and handled, over all its lives (ghost)
          passed,      \* passed[b]: sequences b handled or counted lost, over all its lives (ghost)
          firstStart,  \* firstStart[b]: where b first started; -1 before it attached (ghost)
          view,        \* view[b]: the gated reader's last load of processed[b]
          crashes      \* crashes and departures so far (bounds the state space)

R == INSTANCE RingReader WITH AfterRead <- "after"
(* The publisher's steps are SpmcRing's; it never declares runs lost here, *)
(* so the lost-run state is fixed at its initial values.                    *)
P == INSTANCE SpmcRing WITH NumReaders <- 0, Mutant <- "none", LostRun <- 0,
                            lfirst <- 0, lnext <- 0, lend <- 0, declared <- {}

readerVars == <<rpc, pos, start, first, rw, seen, got, lost, abandoned>>
publisherVars == <<wpc, ww>>
ringVars == <<stamp, word, cursor>>
stageVars == <<processed, handled, passed, firstStart, view, crashes>>
vars == <<ringVars, publisherVars, readerVars, stageVars>>

MaxCrashes == 1

Init ==
    /\ stamp = [i \in Slots |-> Empty]
    /\ word = [i \in Slots |-> [w \in 0 .. Words |-> NoData]]
    /\ cursor = 0
    /\ wpc = "begin"
    /\ ww = 0
    /\ R!ReaderInit
    /\ processed = [b \in Stages |-> 0]
    /\ handled = [b \in Stages |-> {}]
    /\ passed = [b \in Stages |-> {}]
    /\ firstStart = [b \in Stages |-> -1]
    /\ view = [b \in Stages |-> 0]
    /\ crashes = 0

Publish ==
    /\ P!Begin \/ P!WritePayload \/ P!Commit \/ P!Advance
    /\ UNCHANGED stageVars

SetMin(S) == CHOOSE m \in S : \A x \in S : m <= x
GateLimit == IF Mutant = "ignore_gate" THEN Messages ELSE SetMin({view[b] : b \in Stages})

(* The gated reader attaches at the cursor or a ring's worth back. *)
AttachGated ==
    /\ rpc[Gated] = "out"
    /\ \E at \in {cursor, Max(cursor - Capacity, 0)} : R!StartAt(Gated, at)
    /\ UNCHANGED <<ringVars, publisherVars, stageVars>>

(* A stage attaches at the cursor or a ring's worth back, its progress    *)
(* starting there; once it has lived, it comes back only with             *)
(* start="resume", at the progress its name left behind. A new life reads *)
(* afresh (its got/lost log restarts; handled keeps every life's work).   *)
AttachStage(b) ==
    /\ rpc[b] = "out"
    /\ \E at \in IF firstStart[b] < 0 THEN {cursor, Max(cursor - Capacity, 0)}
                 ELSE {processed[b]} :
          /\ rpc' = [rpc EXCEPT ![b] = "check"]
          /\ pos' = [pos EXCEPT ![b] = at]
          /\ start' = [start EXCEPT ![b] = at]
          /\ got' = [got EXCEPT ![b] = << >>]
          /\ lost' = [lost EXCEPT ![b] = 0]
          /\ processed' = [processed EXCEPT ![b] = at]
          /\ firstStart' = [firstStart EXCEPT ![b] = IF @ < 0 THEN at ELSE @]
    /\ UNCHANGED <<ringVars, publisherVars, first, rw, seen, abandoned, handled, passed, view, crashes>>

(* A read step; the gated reader begins a read (CheckStamp) only below    *)
(* its gate. A stage with the commit_on_read mutant publishes progress    *)
(* past a message the moment it reads its stamp.                          *)
Read(r) ==
    /\ (r = Gated /\ rpc[r] = "check") => pos[r] < GateLimit
    /\ R!ReadStep(r)
    /\ IF Mutant = "commit_on_read" /\ r \in Stages /\ rpc[r] = "check"
          THEN processed' = [processed EXCEPT ![r] = Max(@, pos[r] + 1)]
          ELSE UNCHANGED processed
    /\ UNCHANGED <<ringVars, publisherVars, handled, passed, firstStart, view, crashes>>

(* After a read (accepted, lapped or skipped): a stage handles what it    *)
(* accepted (the user's code), then Commit publishes its progress         *)
(* (Subscriber::commit, at its next receive); the gated reader goes on.   *)
After(r) ==
    /\ rpc[r] = "after"
    /\ IF r \in Stages
          THEN /\ handled' = [handled EXCEPT ![r] =
                     @ \cup {got[r][i].seq : i \in 1 .. Len(got[r])}]
               /\ passed' = [passed EXCEPT ![r] = @ \cup (start[r] .. pos[r] - 1)]
               /\ rpc' = [rpc EXCEPT ![r] = "commit"]
          ELSE /\ rpc' = [rpc EXCEPT ![r] = "check"]
               /\ UNCHANGED <<handled, passed>>
    /\ UNCHANGED <<ringVars, publisherVars, processed, firstStart, view, crashes,
                   pos, start, first, rw, seen, got, lost, abandoned>>

Commit(b) ==
    /\ rpc[b] = "commit"
    /\ processed' = [processed EXCEPT ![b] = pos[b]]
    /\ rpc' = [rpc EXCEPT ![b] = "check"]
    /\ UNCHANGED <<ringVars, publisherVars, handled, passed, firstStart, view, crashes,
                   pos, start, first, rw, seen, got, lost, abandoned>>

(* GateLoad: the gated reader loads one stage's progress. *)
GateLoad(b) ==
    /\ rpc[Gated] = "check"
    /\ view[b] # processed[b]
    /\ view' = [view EXCEPT ![b] = processed[b]]
    /\ UNCHANGED <<ringVars, publisherVars, readerVars, processed, handled, passed, firstStart, crashes>>

(* A stage crashes or leaves at any step; its record keeps its name and   *)
(* progress.                                                              *)
Crash(b) ==
    /\ rpc[b] # "out" /\ crashes < MaxCrashes
    /\ rpc' = [rpc EXCEPT ![b] = "out"]
    /\ crashes' = crashes + 1
    /\ UNCHANGED <<ringVars, publisherVars, processed, handled, passed, firstStart, view,
                   pos, start, first, rw, seen, got, lost, abandoned>>

(* Everything published, every reader attached and caught up, every      *)
(* stage's progress published and seen: the run ends here (a stutter, so *)
(* that TLC's deadlock check flags a gated reader stuck for good).        *)
Finished ==
    /\ wpc = "begin" /\ cursor = Messages
    /\ \A r \in Readers : rpc[r] = "check" /\ pos[r] >= cursor
    /\ \A b \in Stages : processed[b] = pos[b] /\ view[b] = processed[b]
    /\ UNCHANGED vars

Next ==
    \/ Publish
    \/ AttachGated
    \/ \E r \in Readers : Read(r) \/ After(r)
    \/ \E b \in Stages : AttachStage(b) \/ Commit(b) \/ GateLoad(b) \/ Crash(b)
    \/ Finished

Spec == Init /\ [][Next]_vars

(***************************************************************************)
(* Properties                                                              *)
(***************************************************************************)

NoTornAccept == R!NoTornAccept
InOrder == R!InOrder
Accounted == R!Accounted
StampsCovered == R!StampsCovered

(* The gate: every message the gated reader accepted had been passed by   *)
(* every stage (handled, or counted lost when the stage was lapped: the    *)
(* gate releases what a stage lost, it cannot hold it back for good),     *)
(* unless it was published before that stage first started (not that      *)
(* stage's business). A stage that never attached holds it back.          *)
GatedAfterStages ==
    \A i \in 1 .. Len(got[Gated]) : \A b \in Stages :
        LET s == got[Gated][i].seq
        IN s \in passed[b] \/ s < firstStart[b]

(* A stage's published progress covers only what it passed, and of what   *)
(* it accepted only what it handled.                                      *)
ProgressHonest ==
    \A b \in Stages :
        /\ firstStart[b] >= 0 => \A s \in firstStart[b] .. processed[b] - 1 : s \in passed[b]
        /\ \A i \in 1 .. Len(got[b]) :
               got[b][i].seq < processed[b] => got[b][i].seq \in handled[b]
=============================================================================
