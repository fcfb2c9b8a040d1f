------------------------------ MODULE SpmcRing ------------------------------
(***************************************************************************)
(* The single-producer stamp-in-slot ring: one publisher laps a ring of    *)
(* Capacity slots while readers attach at any time and copy slots word by  *)
(* word. Mirrors protocol::publish (Begin, WritePayload, Commit, Advance)  *)
(* and the reader of RingReader.tla.                                       *)
(*                                                                         *)
(* Mutants (Mutant constant, one configuration each under mutants/):       *)
(*   "skip_recheck"    the reader accepts its copy without the second      *)
(*                     stamp load;                                         *)
(*   "no_begin_stamp"  the publisher writes the payload without first      *)
(*                     storing the odd "writing" stamp.                    *)
(* Each must break NoTornAccept.                                           *)
(***************************************************************************)
EXTENDS Integers, Sequences, RingStamps

CONSTANTS Words,       \* payload words per slot (besides the length word)
          Messages,    \* the publisher publishes sequences 0 .. Messages-1
          NumReaders,
          Mutant

ASSUME Words \in Nat \ {0} /\ Messages \in Nat /\ NumReaders \in Nat
ASSUME Mutant \in {"none", "skip_recheck", "no_begin_stamp"}

Readers == 1 .. NumReaders

VARIABLES stamp, word, cursor,
          wpc,         \* the publisher's next step
          ww,          \* the next word it writes
          rpc, pos, start, first, rw, seen, got, lost, abandoned

R == INSTANCE RingReader WITH AfterRead <- "check"

readerVars == <<rpc, pos, start, first, rw, seen, got, lost, abandoned>>
publisherVars == <<wpc, ww>>
ringVars == <<stamp, word, cursor>>
vars == <<ringVars, publisherVars, readerVars>>

Init ==
    /\ stamp = [i \in Slots |-> Empty]
    /\ word = [i \in Slots |-> [w \in 0 .. Words |-> NoData]]
    /\ cursor = 0
    /\ wpc = "begin"
    /\ ww = 0
    /\ R!ReaderInit

(* The publisher writes message `cursor` (it is the only writer). *)
Slot == SlotOf(cursor)

(* Begin: protocol::begin stores the odd stamp. *)
Begin ==
    /\ wpc = "begin" /\ cursor < Messages
    /\ stamp' = IF Mutant = "no_begin_stamp" THEN stamp
                ELSE [stamp EXCEPT ![Slot] = Writing(cursor)]
    /\ wpc' = "payload" /\ ww' = 0
    /\ UNCHANGED <<word, cursor, readerVars>>

(* WritePayload: protocol::write_payload stores the length, then the words, *)
(* one store per step.                                                      *)
WritePayload ==
    /\ wpc = "payload"
    /\ word' = [word EXCEPT ![Slot][ww] = cursor]
    /\ IF ww = Words THEN wpc' = "commit" /\ UNCHANGED ww
                     ELSE ww' = ww + 1 /\ UNCHANGED wpc
    /\ UNCHANGED <<stamp, cursor, readerVars>>

(* Commit: protocol::commit stores the even stamp. *)
Commit ==
    /\ wpc = "commit"
    /\ stamp' = [stamp EXCEPT ![Slot] = Complete(cursor)]
    /\ wpc' = "advance"
    /\ UNCHANGED <<word, cursor, ww, readerVars>>

(* Advance: protocol::publish stores the cursor. *)
Advance ==
    /\ wpc = "advance"
    /\ cursor' = cursor + 1
    /\ wpc' = "begin"
    /\ UNCHANGED <<stamp, word, ww, readerVars>>

(* Subscriber::attach: a reader starts at the cursor (Start::Latest) or a  *)
(* ring's worth back (Start::Oldest), possibly in the middle of a write.   *)
Attach(r) ==
    /\ rpc[r] = "out"
    /\ \E at \in {cursor, Max(cursor - Capacity, 0)} : R!StartAt(r, at)
    /\ UNCHANGED <<ringVars, publisherVars>>

Read(r) == R!ReadStep(r) /\ UNCHANGED <<ringVars, publisherVars>>

(* Everything published and every attached reader caught up: the run ends *)
(* here (a stutter, so that TLC's deadlock check flags only real hangs).   *)
Finished ==
    /\ wpc = "begin" /\ cursor = Messages
    /\ \A r \in Readers : rpc[r] = "check" /\ pos[r] >= cursor
    /\ UNCHANGED vars

Next ==
    \/ Begin \/ WritePayload \/ Commit \/ Advance
    \/ \E r \in Readers : Attach(r) \/ Read(r)
    \/ Finished

Spec == Init /\ [][Next]_vars

(***************************************************************************)
(* Properties                                                              *)
(***************************************************************************)

NoTornAccept == R!NoTornAccept
InOrder == R!InOrder
Accounted == R!Accounted
StampsCovered == R!StampsCovered

(* Stamps hold exactly what the protocol says: every slot the complete     *)
(* stamp of the last message published into it (or empty), except the      *)
(* slot being written, whose stamp is odd from Begin to Commit.            *)
LastPublishedInto(i) ==
    IF i < cursor THEN i + ((cursor - 1 - i) \div Capacity) * Capacity ELSE -1
ExpectedStamp(i) ==
    CASE i = Slot /\ wpc \in {"payload", "commit"} -> Writing(cursor)
      [] i = Slot /\ wpc = "advance"               -> Complete(cursor)
      [] LastPublishedInto(i) >= 0                 -> Complete(LastPublishedInto(i))
      [] OTHER                                     -> Empty
StampsAsProtocol == \A i \in Slots : stamp[i] = ExpectedStamp(i)

(* And a slot's stamp never goes backwards (an action property). *)
StampsOnlyGrow == [][\A i \in Slots : stamp'[i] >= stamp[i]]_stamp
=============================================================================
