------------------------------ MODULE MpmcRing ------------------------------
(***************************************************************************)
(* The multi-producer ring: producers Claim a run of 1 .. MaxBatch         *)
(* sequences with one fetch-add on the cursor and, for each in turn, wait  *)
(* until its slot holds the completed previous lap and enter it with a     *)
(* compare-exchange (WaitPreviousLap + Begin), write the payload word by   *)
(* word and Commit. There is no Advance: the cursor counts claimed         *)
(* sequences. A producer may crash at any step, including inside a batch;  *)
(* readers (and producers waiting on the slot) then recover the slot once  *)
(* its claim deadline passes (RecoverAbandoned): they scan the producer    *)
(* table and declare lost, with one compare-exchange, the newest lap of    *)
(* the slot before the first one a live producer owns or may be about to  *)
(* own: every abandoned lap of the slot at once (a whole dead batch, a     *)
(* cursor far ahead). Readers may get past every claimed lap, a producer   *)
(* only past the laps before its own.                                      *)
(*                                                                         *)
(* Mirrors publish/multi.rs (reserve, enter_slow, write), protocol/        *)
(* (claim, try_enter, write_payload, commit, declare_lost) and             *)
(* shm/ring/recovery.rs (recover_abandoned, StuckWatch). Time is abstract: *)
(* a deadline may expire at any moment, which is safe only because        *)
(* liveness (not time) decides.                                            *)
(*                                                                         *)
(* Mutants (one configuration each under mutants/):                        *)
(*   "no_lap_wait"   a producer enters its slot without waiting for the    *)
(*                   previous lap: two writers in one slot;                *)
(*   "declare_live"  recovery declares a slot lost when the deadline       *)
(*                   passes without asking whether its owner is alive;     *)
(*   "no_announce"   producers do not announce a claim before making it;   *)
(*                   a slot is declared lost under its live owner, who     *)
(*                   then waits forever;                                   *)
(*   "claim_first_only"  recovery takes a claimed range for its first      *)
(*                   sequence only (as if claims were one sequence), and   *)
(*                   declares a live producer's later sequence lost;       *)
(*   "jump_past_live"  the declaration jumps over a later lap a live       *)
(*                   producer owns (only the stuck lap's owner is asked),  *)
(*                   which then can never enter its slot.                  *)
(***************************************************************************)
EXTENDS Integers, Sequences, FiniteSets, RingStamps

CONSTANTS Words, Messages, NumProducers, NumReaders,
          MaxCrashes,  \* producers that may crash in one behaviour
          MaxBatch,    \* most sequences one claim takes
          Mutant

ASSUME Words \in Nat \ {0} /\ Messages \in Nat /\ MaxBatch \in Nat \ {0}
ASSUME NumProducers \in Nat \ {0} /\ NumReaders \in Nat /\ MaxCrashes \in Nat
ASSUME Mutant \in {"none", "skip_recheck", "no_lap_wait", "declare_live", "no_announce",
                   "claim_first_only", "jump_past_live"}

Producers == 1 .. NumProducers
Readers == NumProducers + 1 .. NumProducers + NumReaders
Agents == Producers \cup Readers

(* A producer record's claim (layout::ProducerRecord.claim, claim_end):   *)
(* the claimed range f .. e - 1, or one of two markers.                    *)
Idle == [f |-> -1, e |-> -1]      \* CLAIM_IDLE
Pending == [f |-> -2, e |-> -2]   \* CLAIM_PENDING: about to claim, range not known yet
Range(f, e) == [f |-> f, e |-> e]

VARIABLES stamp, word, cursor,
          ppc,       \* ppc[p]: producer p's next step
          mine,      \* mine[p]: the sequence of p's claim p enters or writes now
          mineEnd,   \* mineEnd[p]: one past the last sequence of p's claim
          pw,        \* pw[p]: the next word p writes
          claimRec,  \* claimRec[p]: p's record (Idle, Pending or its claim)
          alive,     \* alive[p]: p's record lock is held (sys/liveness.rs)
          crashes,
          rcv,       \* rcv[a]: agent a's step inside recover_abandoned
          rcvIdx,    \* rcvIdx[a]: next producer record a looks at
          rcvObs,    \* rcvObs[a]: the stamp a observed
          rcvStuck,  \* rcvStuck[a]: the sequence the slot is stuck on
          rcvLast,   \* rcvLast[a]: the newest lap a may declare (so far)
          committed, \* ghost: sequences committed with data
          declared,  \* ghost: sequences declared lost
          rpc, pos, start, first, rw, seen, got, lost, abandoned

R == INSTANCE RingReader WITH AfterRead <- "check"

readerVars == <<rpc, pos, start, first, rw, seen, got, lost, abandoned>>
producerVars == <<ppc, mine, mineEnd, pw, claimRec, alive, crashes>>
recoveryVars == <<rcv, rcvIdx, rcvObs, rcvStuck, rcvLast>>
ringVars == <<stamp, word, cursor>>
ghostVars == <<committed, declared>>
vars == <<ringVars, producerVars, recoveryVars, ghostVars, readerVars>>

Init ==
    /\ stamp = [i \in Slots |-> Empty]
    /\ word = [i \in Slots |-> [w \in 0 .. Words |-> NoData]]
    /\ cursor = 0
    /\ ppc = [p \in Producers |-> "idle"]
    /\ mine = [p \in Producers |-> 0]
    /\ mineEnd = [p \in Producers |-> 0]
    /\ pw = [p \in Producers |-> 0]
    /\ claimRec = [p \in Producers |-> Idle]
    /\ alive = [p \in Producers |-> TRUE]
    /\ crashes = 0
    /\ rcv = [a \in Agents |-> "none"]
    /\ rcvIdx = [a \in Agents |-> 1]
    /\ rcvObs = [a \in Agents |-> Empty]
    /\ rcvStuck = [a \in Agents |-> 0]
    /\ rcvLast = [a \in Agents |-> 0]
    /\ committed = {}
    /\ declared = {}
    /\ R!ReaderInit

MySlot(p) == SlotOf(mine[p])

(***************************************************************************)
(* Producers (Publisher::send: one claim per batch)                        *)
(***************************************************************************)

(* Announce: reserve stores CLAIM_PENDING before the fetch-add, so anyone  *)
(* who sees the cursor past a sequence sees that a producer may own it.    *)
Announce(p) ==
    /\ ppc[p] = "idle"
    /\ claimRec' = IF Mutant = "no_announce" THEN claimRec
                   ELSE [claimRec EXCEPT ![p] = Pending]
    /\ ppc' = [ppc EXCEPT ![p] = "claim"]
    /\ UNCHANGED <<ringVars, mine, mineEnd, pw, alive, crashes, recoveryVars, ghostVars,
                   readerVars>>

(* Claim: protocol::claim, one fetch-add on the cursor for k sequences. *)
Claim(p) ==
    /\ ppc[p] = "claim"
    /\ IF cursor < Messages
          THEN \E k \in 1 .. Min(MaxBatch, Messages - cursor) :
               /\ mine' = [mine EXCEPT ![p] = cursor]
               /\ mineEnd' = [mineEnd EXCEPT ![p] = cursor + k]
               /\ cursor' = cursor + k
               /\ ppc' = [ppc EXCEPT ![p] = "record"]
               /\ UNCHANGED claimRec
          ELSE \* the model's run is over: the producer leaves
               /\ claimRec' = [claimRec EXCEPT ![p] = Idle]
               /\ ppc' = [ppc EXCEPT ![p] = "done"]
               /\ UNCHANGED <<mine, mineEnd, cursor>>
    /\ UNCHANGED <<stamp, word, pw, alive, crashes, recoveryVars, ghostVars, readerVars>>

(* RecordClaim: reserve stores the claimed range in the record. *)
RecordClaim(p) ==
    /\ ppc[p] = "record"
    /\ claimRec' = [claimRec EXCEPT ![p] = Range(mine[p], mineEnd[p])]
    /\ ppc' = [ppc EXCEPT ![p] = "enter"]
    /\ UNCHANGED <<ringVars, mine, mineEnd, pw, alive, crashes, recoveryVars, ghostVars,
                   readerVars>>

(* WaitPreviousLap + Begin: protocol::try_enter, a compare-exchange from  *)
(* the completed previous lap to "writing mine". Waiting is a stutter.    *)
Enter(p) ==
    /\ ppc[p] = "enter" /\ rcv[p] = "none"
    /\ PreviousLapDone(stamp[MySlot(p)], mine[p]) \/ Mutant = "no_lap_wait"
    /\ stamp' = [stamp EXCEPT ![MySlot(p)] = Writing(mine[p])]
    /\ ppc' = [ppc EXCEPT ![p] = "payload"]
    /\ pw' = [pw EXCEPT ![p] = 0]
    /\ UNCHANGED <<word, cursor, mine, mineEnd, claimRec, alive, crashes, recoveryVars,
                   ghostVars, readerVars>>

(* WritePayload: the length word, then the payload words. *)
WritePayload(p) ==
    /\ ppc[p] = "payload"
    /\ word' = [word EXCEPT ![MySlot(p)][pw[p]] = mine[p]]
    /\ IF pw[p] = Words THEN ppc' = [ppc EXCEPT ![p] = "commit"] /\ UNCHANGED pw
                        ELSE pw' = [pw EXCEPT ![p] = @ + 1] /\ UNCHANGED ppc
    /\ UNCHANGED <<stamp, cursor, mine, mineEnd, claimRec, alive, crashes, recoveryVars,
                   ghostVars, readerVars>>

(* Commit: protocol::commit; then the claim's next sequence, if any. *)
Commit(p) ==
    /\ ppc[p] = "commit"
    /\ stamp' = [stamp EXCEPT ![MySlot(p)] = Complete(mine[p])]
    /\ committed' = committed \cup {mine[p]}
    /\ IF mine[p] + 1 < mineEnd[p]
          THEN /\ mine' = [mine EXCEPT ![p] = @ + 1]
               /\ ppc' = [ppc EXCEPT ![p] = "enter"]
          ELSE /\ ppc' = [ppc EXCEPT ![p] = "release"]
               /\ UNCHANGED mine
    /\ UNCHANGED <<word, cursor, mineEnd, pw, claimRec, alive, crashes, recoveryVars, declared,
                   readerVars>>

(* Release: send stores CLAIM_IDLE once the claimed range is committed. *)
Release(p) ==
    /\ ppc[p] = "release"
    /\ claimRec' = [claimRec EXCEPT ![p] = Idle]
    /\ ppc' = [ppc EXCEPT ![p] = "idle"]
    /\ mine' = [mine EXCEPT ![p] = 0]   \* forgotten: no longer matters
    /\ mineEnd' = [mineEnd EXCEPT ![p] = 0]
    /\ pw' = [pw EXCEPT ![p] = 0]
    /\ UNCHANGED <<ringVars, alive, crashes, recoveryVars, ghostVars, readerVars>>

(* A producer dies at any step: its record lock goes with it. *)
Crash(p) ==
    /\ alive[p] /\ crashes < MaxCrashes /\ ppc[p] # "done"
    /\ alive' = [alive EXCEPT ![p] = FALSE]
    /\ crashes' = crashes + 1
    /\ UNCHANGED <<ringVars, ppc, mine, mineEnd, pw, claimRec, recoveryVars, ghostVars,
                   readerVars>>

ProducerStep(p) ==
    alive[p] /\ (Announce(p) \/ Claim(p) \/ RecordClaim(p) \/ Enter(p)
                 \/ WritePayload(p) \/ Commit(p) \/ Release(p))

(***************************************************************************)
(* RecoverAbandoned: RingMap::recover_abandoned(seq, include_seq), run by  *)
(* a reader stuck on its next message (StuckWatch) or by a producer stuck  *)
(* waiting for the previous lap of its own slot (enter_slow). The cursor   *)
(* load and the stamp load are one step here: the cursor only grows, so    *)
(* reading it later changes nothing the code decides.                      *)
(***************************************************************************)
(* The first lap from stuck to last that a producer whose record says c   *)
(* owns or may be about to own; NoLap if none. A pending claim may own     *)
(* anything. The "claim_first_only" mutant sees only a claim's first        *)
(* sequence.                                                                *)
OwnedLap(c, stuck, last) ==
    IF c = Pending THEN stuck
    ELSE IF Mutant = "claim_first_only" THEN FirstOwnedLap(stuck, last, c.f, c.f + 1)
    ELSE FirstOwnedLap(stuck, last, c.f, c.e)

(* The newest lap of the slot of seq below the cursor: as far as a reader  *)
(* may get past (every lap up to it is claimed).                           *)
NewestClaimedLap(seq) == seq + ((cursor - 1 - seq) \div Capacity) * Capacity

RecoverStart(a, seq, includeSeq) ==
    /\ rcv[a] = "none" /\ cursor > seq
    /\ LET obs == stamp[SlotOf(seq)]
           stuck == BlockingLap(obs, seq)
           last == IF includeSeq THEN NewestClaimedLap(seq) ELSE seq - Capacity
       IN /\ includeSeq => Observe(obs, seq) = "not_yet"
          /\ stuck # NoLap /\ stuck <= last
          /\ rcv' = [rcv EXCEPT ![a] = "scan"]
          /\ rcvIdx' = [rcvIdx EXCEPT ![a] = 1]
          /\ rcvObs' = [rcvObs EXCEPT ![a] = obs]
          /\ rcvStuck' = [rcvStuck EXCEPT ![a] = stuck]
          /\ rcvLast' = [rcvLast EXCEPT ![a] = last]
    /\ UNCHANGED <<ringVars, producerVars, ghostVars, readerVars>>

(* An attempt ends; what it looked at is forgotten. *)
EndAttempt(a) ==
    /\ rcv' = [rcv EXCEPT ![a] = "none"]
    /\ rcvIdx' = [rcvIdx EXCEPT ![a] = 1]
    /\ rcvObs' = [rcvObs EXCEPT ![a] = Empty]
    /\ rcvStuck' = [rcvStuck EXCEPT ![a] = 0]
    /\ rcvLast' = [rcvLast EXCEPT ![a] = 0]

(* Look at one producer record: a live producer that owns or may be about *)
(* to own the stuck lap ends the attempt; one that owns a later lap stops   *)
(* the declaration just before that lap.                                   *)
RecoverScan(a) ==
    /\ rcv[a] = "scan"
    /\ LET i == rcvIdx[a] IN
         IF i > NumProducers
            THEN /\ rcv' = [rcv EXCEPT ![a] = "declare"]
                 /\ UNCHANGED <<rcvIdx, rcvObs, rcvStuck, rcvLast>>
         ELSE LET lap == OwnedLap(claimRec[i], rcvStuck[a], rcvLast[a]) IN
              IF lap # NoLap /\ alive[i] /\ Mutant # "declare_live"
                 THEN IF lap = rcvStuck[a]
                         THEN EndAttempt(a)
                         ELSE /\ rcvLast' = [rcvLast EXCEPT ![a] =
                                     IF Mutant = "jump_past_live" THEN @ ELSE lap - Capacity]
                              /\ rcvIdx' = [rcvIdx EXCEPT ![a] = i + 1]
                              /\ UNCHANGED <<rcv, rcvObs, rcvStuck>>
                 ELSE /\ rcvIdx' = [rcvIdx EXCEPT ![a] = i + 1]
                      /\ UNCHANGED <<rcv, rcvObs, rcvStuck, rcvLast>>
    /\ UNCHANGED <<ringVars, producerVars, ghostVars, readerVars>>

(* DeclareLost: protocol::declare_lost, one compare-exchange from the     *)
(* stamp observed to Lost(last): every lap from the stuck one to last is   *)
(* abandoned. No payload is written, so no declarer is ever inside a slot. *)
RecoverDeclare(a) ==
    /\ rcv[a] = "declare"
    /\ LET i == SlotOf(rcvStuck[a]) IN
         /\ IF stamp[i] = rcvObs[a]
               THEN /\ stamp' = [stamp EXCEPT ![i] = Lost(rcvLast[a])]
                    /\ declared' = declared \cup LapsFrom(rcvStuck[a], rcvLast[a])
               ELSE UNCHANGED <<stamp, declared>>
         /\ EndAttempt(a)
    /\ UNCHANGED <<word, cursor, producerVars, committed, readerVars>>

RecoverStep(a) == RecoverScan(a) \/ RecoverDeclare(a)

(* Who may run a recovery now. *)
ProducerRecovers(p) ==
    /\ alive[p] /\ ppc[p] = "enter"
    /\ ~PreviousLapDone(stamp[MySlot(p)], mine[p])
    /\ RecoverStart(p, mine[p], FALSE)
ReaderRecovers(r) == rpc[r] = "check" /\ RecoverStart(r, pos[r], TRUE)

AgentAlive(a) == IF a \in Producers THEN alive[a] ELSE TRUE

(***************************************************************************)
(* Readers                                                                 *)
(***************************************************************************)
Attach(r) ==
    /\ rpc[r] = "out"
    /\ \E at \in {cursor, Max(cursor - Capacity, 0)} : R!StartAt(r, at)
    /\ UNCHANGED <<ringVars, producerVars, recoveryVars, ghostVars>>

Read(r) ==
    /\ rcv[r] = "none"
    /\ R!ReadStep(r)
    /\ UNCHANGED <<ringVars, producerVars, recoveryVars, ghostVars>>

(* Every claim made is committed or declared, and every reader is done. *)
Finished ==
    /\ \A p \in Producers : ppc[p] = "done" \/ ~alive[p]
    /\ \A a \in Agents : AgentAlive(a) => rcv[a] = "none"
    /\ \A r \in Readers : rpc[r] = "check" /\ pos[r] >= cursor
    /\ UNCHANGED vars

Next ==
    \/ \E p \in Producers : ProducerStep(p) \/ Crash(p) \/ ProducerRecovers(p)
    \/ \E r \in Readers : Attach(r) \/ Read(r) \/ ReaderRecovers(r)
    \/ \E a \in Agents : AgentAlive(a) /\ RecoverStep(a)
    \/ Finished

(* Fairness: every live agent keeps taking its enabled steps (crashing is  *)
(* never forced; a reader attaches eventually).                            *)
Fairness ==
    /\ \A p \in Producers :
           WF_vars(ProducerStep(p) \/ ProducerRecovers(p) \/ (alive[p] /\ RecoverStep(p)))
    /\ \A r \in Readers :
           WF_vars(Attach(r) \/ Read(r) \/ ReaderRecovers(r) \/ RecoverStep(r))

Spec == Init /\ [][Next]_vars
FairSpec == Spec /\ Fairness

(***************************************************************************)
(* Properties                                                              *)
(***************************************************************************)
NoTornAccept == R!NoTornAccept
InOrder == R!InOrder
Accounted == R!Accounted
StampsCovered == R!StampsCovered

(* Never two live writers in one slot (producers between Enter and Commit), *)
(* and a slot being written is never declared lost under its writer.       *)
WritesIn(p, i) == alive[p] /\ ppc[p] \in {"payload", "commit"} /\ MySlot(p) = i
NoTwoWriters ==
    \A i \in Slots :
        /\ Cardinality({p \in Producers : WritesIn(p, i)}) <= 1
        /\ \A p \in Producers : WritesIn(p, i) => stamp[i] = Writing(mine[p])

(* A message is committed with data or declared lost, never both; readers *)
(* skip as lost only what was declared.                                   *)
LostXorCommitted == committed \cap declared = {}
SkippedOnlyIfDeclared == \A r \in Readers : abandoned[r] \subseteq declared

StampsOnlyGrow == [][\A i \in Slots : Base(stamp'[i]) >= Base(stamp[i])]_stamp

(* Liveness: a live producer does not wait forever to enter its slot (a   *)
(* dead previous-lap owner is declared lost), and every reader eventually *)
(* passes every claimed sequence (each is committed or declared).         *)
ProducersEnter ==
    \A p \in Producers : (ppc[p] = "enter") ~> (ppc[p] # "enter" \/ ~alive[p])
ReadersCatchUp ==
    \A r \in Readers : <>[](rpc[r] = "check" /\ pos[r] >= cursor)
=============================================================================
