----------------------------- MODULE RingReader -----------------------------
(***************************************************************************)
(* A subscriber reading a stamp-in-slot ring, shared by every ring model.  *)
(* Mirrors protocol::read_slot and protocol::try_read                      *)
(* (crates/ringcast-core/src/protocol/): CheckStamp loads the stamp; on  *)
(* the expected complete stamp the reader copies the length word and the   *)
(* payload words one at a time (CopyWord), then Recheck loads the stamp    *)
(* again and accepts the copy only if it did not change. A stamp of a      *)
(* later lap sends the reader to Resync, which skips to just past the      *)
(* oldest safe message and counts what it skipped as lost. A slot whose    *)
(* stamp says message pos was declared lost (its producer died) is skipped *)
(* and counted lost.                                                       *)
(*                                                                         *)
(* The models instantiate this module; each adds its own attach steps and  *)
(* guards. Every read step is one shared-memory access, so the payload can *)
(* be torn by a writer between two CopyWord steps.                         *)
(***************************************************************************)
EXTENDS Integers, Sequences, RingStamps

CONSTANTS Readers,     \* reader identities
          Words,       \* payload words per slot (word 0 is the length)
          Mutant,      \* "skip_recheck": Recheck always passes
          AfterRead    \* the reader's step after consuming a slot

VARIABLES stamp,       \* stamp[i]: slot i's stamp
          word,        \* word[i][w]: word w of slot i (0: the length)
          cursor,      \* the ring's cursor (next sequence to publish/claim)
          rpc,         \* rpc[r]: the reader's next step
          pos,         \* pos[r]: next sequence r expects (ReaderPosition.next)
          start,       \* start[r]: where r started
          first,       \* first[r]: the stamp CheckStamp saw
          rw,          \* rw[r]: next word r copies
          seen,        \* seen[r][w]: r's copy of the slot
          got,         \* got[r]: messages r accepted, in order (a ghost log)
          lost,        \* lost[r]: messages r counted lost
          abandoned    \* abandoned[r]: sequences r skipped as declared lost

readerVars == <<rpc, pos, start, first, rw, seen, got, lost, abandoned>>

Payload == 0 .. Words
ReaderSlot(r) == SlotOf(pos[r])

ReaderInit ==
    /\ rpc = [r \in Readers |-> "out"]
    /\ pos = [r \in Readers |-> 0]
    /\ start = [r \in Readers |-> 0]
    /\ first = [r \in Readers |-> Empty]
    /\ rw = [r \in Readers |-> 0]
    /\ seen = [r \in Readers |-> [w \in Payload |-> NoData]]
    /\ got = [r \in Readers |-> << >>]
    /\ lost = [r \in Readers |-> 0]
    /\ abandoned = [r \in Readers |-> {}]

(* r starts reading at sequence at (Subscriber::attach). *)
StartAt(r, at) ==
    /\ rpc' = [rpc EXCEPT ![r] = "check"]
    /\ pos' = [pos EXCEPT ![r] = at]
    /\ start' = [start EXCEPT ![r] = at]
    /\ UNCHANGED <<first, rw, seen, got, lost, abandoned>>

(* CheckStamp: first stamp load of read_slot. Waiting on a message not yet *)
(* complete is a stutter, so the step is enabled only when it decides.     *)
CheckStamp(r) ==
    /\ rpc[r] = "check"
    /\ LET st == stamp[ReaderSlot(r)]
           verdict == Observe(st, pos[r])
       IN /\ verdict # "not_yet"
          /\ first' = [first EXCEPT ![r] = IF verdict = "ready" THEN st ELSE Empty]
          /\ IF verdict = "abandoned" /\ cursor <= pos[r]
                \* try_read_below: a lost stamp the cursor does not cover
                \* is damage (ReadFault::Damaged); the reader stops.
                THEN /\ rpc' = [rpc EXCEPT ![r] = "damaged"]
                     /\ UNCHANGED <<pos, lost, abandoned>>
             ELSE IF verdict = "abandoned"
                THEN /\ rpc' = [rpc EXCEPT ![r] = AfterRead]
                     /\ pos' = [pos EXCEPT ![r] = @ + 1]
                     /\ lost' = [lost EXCEPT ![r] = @ + 1]
                     /\ abandoned' = [abandoned EXCEPT ![r] = @ \cup {pos[r]}]
                ELSE /\ rpc' = [rpc EXCEPT ![r] =
                                   IF verdict = "ready" THEN "copy" ELSE "resync"]
                     /\ UNCHANGED <<pos, lost, abandoned>>
          /\ rw' = [rw EXCEPT ![r] = 0]
    /\ UNCHANGED <<start, seen, got>>

(* CopyWord: one word of the length-and-payload copy (copy::load_bytes). *)
CopyWord(r) ==
    /\ rpc[r] = "copy"
    /\ seen' = [seen EXCEPT ![r][rw[r]] = word[ReaderSlot(r)][rw[r]]]
    /\ IF rw[r] = Words
          THEN rpc' = [rpc EXCEPT ![r] = "recheck"] /\ UNCHANGED rw
          ELSE rw' = [rw EXCEPT ![r] = @ + 1] /\ UNCHANGED rpc
    /\ UNCHANGED <<pos, start, first, got, lost, abandoned>>

(* Recheck: the second stamp load; an unchanged stamp proves the copy is   *)
(* whole (the fences that make this true are loom's business). The copy    *)
(* and the stamp seen are forgotten once decided (they no longer matter,   *)
(* and keeping them would only multiply states).                           *)
Recheck(r) ==
    /\ rpc[r] = "recheck"
    /\ IF stamp[ReaderSlot(r)] = first[r] \/ Mutant = "skip_recheck"
          THEN /\ rpc' = [rpc EXCEPT ![r] = AfterRead]
               /\ pos' = [pos EXCEPT ![r] = @ + 1]
               /\ got' = [got EXCEPT ![r] = Append(@, [seq |-> pos[r], copy |-> seen[r]])]
               /\ UNCHANGED <<lost, abandoned>>
          ELSE /\ rpc' = [rpc EXCEPT ![r] = "resync"]
               /\ UNCHANGED <<pos, got, lost, abandoned>>
    /\ seen' = [seen EXCEPT ![r] = [w \in Payload |-> NoData]]
    /\ first' = [first EXCEPT ![r] = Empty]
    /\ rw' = [rw EXCEPT ![r] = 0]
    /\ UNCHANGED start

(* Resync: a lapped reader loads the cursor and skips ahead. *)
Resync(r) ==
    /\ rpc[r] = "resync"
    /\ LET next == ResyncAfterLap(pos[r], cursor)
       IN /\ lost' = [lost EXCEPT ![r] = @ + (next - pos[r])]
          /\ pos' = [pos EXCEPT ![r] = next]
    /\ rpc' = [rpc EXCEPT ![r] = AfterRead]
    /\ UNCHANGED <<start, first, rw, seen, got, abandoned>>

ReadStep(r) == CheckStamp(r) \/ CopyWord(r) \/ Recheck(r) \/ Resync(r)

(***************************************************************************)
(* What every reader of every ring guarantees.                             *)
(***************************************************************************)

(* A reader never accepts a message made of words from different writes:  *)
(* the length and every payload word of an accepted copy were written by   *)
(* the message it was accepted as.                                         *)
NoTornAccept ==
    \A r \in Readers : \A i \in 1 .. Len(got[r]) :
        \A w \in Payload : got[r][i].copy[w] = got[r][i].seq

(* Accepted sequences strictly increase, within [start, pos). *)
InOrder ==
    \A r \in Readers :
        /\ \A i \in 1 .. Len(got[r]) :
               start[r] <= got[r][i].seq /\ got[r][i].seq < pos[r]
        /\ \A i \in 1 .. Len(got[r]) - 1 : got[r][i].seq < got[r][i + 1].seq

(* Every stamp claims a message already under the cursor (a lap is       *)
(* claimed, or the cursor reached it, before its stamp is stored), and a   *)
(* message declared lost is below it: the premise of the reader's damage   *)
(* checks (protocol::try_read_below reports a stamp beyond the cursor, and *)
(* a lost message at or past it, as RingCorrupt).                          *)
StampsCovered ==
    \A i \in Slots : stamp[i] # Empty =>
        /\ SeqOf(stamp[i]) <= cursor
        /\ (IsLost(stamp[i]) => SeqOf(stamp[i]) < cursor)

(* No reader ever takes the ring for damaged: every lost stamp it meets  *)
(* is covered by the cursor (the model merges the stamp and cursor loads;  *)
(* the cursor only grows, so a later load could only cover more).          *)
NeverDamaged == \A r \in Readers : rpc[r] # "damaged"

(* received + lost = position - start: every sequence the reader passed    *)
(* was delivered (in order, by InOrder) or counted lost; none vanish.     *)
Accounted ==
    \A r \in Readers : Len(got[r]) + lost[r] = pos[r] - start[r]
=============================================================================
