------------------------------ MODULE SpmcRing ------------------------------
(***************************************************************************)
(* The single-producer stamp-in-slot ring: one publisher laps a ring of    *)
(* Capacity slots while readers attach at any time and copy slots word by  *)
(* word. Mirrors protocol::publish (Begin, WritePayload, Commit, Advance)  *)
(* and the reader of RingReader.tla.                                       *)
(*                                                                         *)
(* The publisher may also declare a run of sequences lost                  *)
(* (protocol::publish_lost): DeclareLostRun advances the cursor over       *)
(* them, then StampLost stores their lost stamps one by one, only the      *)
(* last Capacity of a longer run.                                          *)
(*                                                                         *)
(* Mutants (Mutant constant, one configuration each under mutants/):       *)
(*   "skip_recheck"    the reader accepts its copy without the second      *)
(*                     stamp load;                                         *)
(*   "no_begin_stamp"  the publisher writes the payload without first      *)
(*                     storing the odd "writing" stamp.                    *)
(* Each must break NoTornAccept.                                           *)
(*   "stamp_before_cursor"  DeclareLostRun stores the lost stamps first    *)
(*                     and advances the cursor after them: a reader sees a *)
(*                     lost stamp the cursor does not cover (it reports    *)
(*                     damage), breaking NeverDamaged.                     *)
(***************************************************************************)
EXTENDS Integers, Sequences, RingStamps

CONSTANTS Words,       \* payload words per slot (besides the length word)
          Messages,    \* the publisher publishes sequences 0 .. Messages-1
          NumReaders,
          LostRun,     \* longest run declared lost at once (0: none)
          Mutant

ASSUME Words \in Nat \ {0} /\ Messages \in Nat /\ NumReaders \in Nat
ASSUME LostRun \in Nat
ASSUME Mutant \in {"none", "skip_recheck", "no_begin_stamp", "stamp_before_cursor"}

Readers == 1 .. NumReaders

VARIABLES stamp, word, cursor,
          wpc,         \* the publisher's next step
          ww,          \* the next word it writes
          lfirst,      \* the first sequence of a lost run being stamped
          lnext,       \* the next one it stamps
          lend,        \* the end of that run (all 0 outside a run)
          declared,    \* every sequence declared lost (a ghost)
          rpc, pos, start, first, rw, seen, got, lost, abandoned

R == INSTANCE RingReader WITH AfterRead <- "check"

readerVars == <<rpc, pos, start, first, rw, seen, got, lost, abandoned>>
publisherVars == <<wpc, ww, lfirst, lnext, lend, declared>>
ringVars == <<stamp, word, cursor>>
vars == <<ringVars, publisherVars, readerVars>>
lostVars == <<lfirst, lnext, lend, declared>>

Init ==
    /\ stamp = [i \in Slots |-> Empty]
    /\ word = [i \in Slots |-> [w \in 0 .. Words |-> NoData]]
    /\ cursor = 0
    /\ wpc = "begin"
    /\ ww = 0
    /\ lfirst = 0 /\ lnext = 0 /\ lend = 0 /\ declared = {}
    /\ R!ReaderInit

(* The publisher writes message `cursor` (it is the only writer).          *)
Slot == SlotOf(cursor)

(* Begin: protocol::begin stores the odd stamp.                            *)
Begin ==
    /\ wpc = "begin" /\ cursor < Messages
    /\ stamp' = IF Mutant = "no_begin_stamp" THEN stamp
                ELSE [stamp EXCEPT ![Slot] = Writing(cursor)]
    /\ wpc' = "payload" /\ ww' = 0
    /\ UNCHANGED <<word, cursor, lostVars, readerVars>>

(* WritePayload: protocol::write_payload stores the length, then the words,*)
(* one store per step.                                                     *)
WritePayload ==
    /\ wpc = "payload"
    /\ word' = [word EXCEPT ![Slot][ww] = cursor]
    /\ IF ww = Words THEN wpc' = "commit" /\ UNCHANGED ww
                     ELSE ww' = ww + 1 /\ UNCHANGED wpc
    /\ UNCHANGED <<stamp, cursor, lostVars, readerVars>>

(* Commit: protocol::commit stores the even stamp.                         *)
Commit ==
    /\ wpc = "commit"
    /\ stamp' = [stamp EXCEPT ![Slot] = Complete(cursor)]
    /\ wpc' = "advance"
    /\ UNCHANGED <<word, cursor, ww, lostVars, readerVars>>

(* Advance: protocol::publish stores the cursor.                           *)
Advance ==
    /\ wpc = "advance"
    /\ cursor' = cursor + 1
    /\ wpc' = "begin"
    /\ UNCHANGED <<stamp, word, ww, lostVars, readerVars>>

(* DeclareLostRun: protocol::publish_lost stores the cursor past the k     *)
(* sequences first (one store), so that every lost stamp is covered.       *)
(* Only the last Capacity of them will be stamped: the earlier laps of     *)
(* their slots are overwritten by the run itself.                          *)
DeclareLostRun ==
    /\ wpc = "begin"
    /\ \E k \in 1 .. LostRun :
         /\ cursor + k <= Messages
         /\ cursor' = IF Mutant = "stamp_before_cursor" THEN cursor ELSE cursor + k
         /\ lfirst' = cursor
         /\ lnext' = Max(cursor, cursor + k - Capacity)
         /\ lend' = cursor + k
         /\ declared' = declared \cup (cursor .. cursor + k - 1)
    /\ wpc' = "lose"
    /\ UNCHANGED <<stamp, word, ww, readerVars>>

(* StampLost: one lost stamp per step, in ascending order (the mutant      *)
(* advances the cursor only after the last one).                           *)
StampLost ==
    /\ wpc = "lose"
    /\ stamp' = [stamp EXCEPT ![SlotOf(lnext)] = Lost(lnext)]
    /\ IF lnext + 1 = lend
          THEN /\ wpc' = "begin" /\ lfirst' = 0 /\ lnext' = 0 /\ lend' = 0
               /\ cursor' = IF Mutant = "stamp_before_cursor" THEN lend ELSE cursor
          ELSE /\ lnext' = lnext + 1
               /\ UNCHANGED <<wpc, lfirst, lend, cursor>>
    /\ UNCHANGED <<word, ww, declared, readerVars>>

(* Subscriber::attach: a reader starts at the cursor (Start::Latest) or a  *)
(* ring's worth back (Start::Oldest), possibly in the middle of a write.   *)
Attach(r) ==
    /\ rpc[r] = "out"
    /\ \E at \in {cursor, Max(cursor - Capacity, 0)} : R!StartAt(r, at)
    /\ UNCHANGED <<ringVars, publisherVars>>

Read(r) == R!ReadStep(r) /\ UNCHANGED <<ringVars, publisherVars>>

(* Everything published and every attached reader caught up: the run ends  *)
(* here (a stutter, so that TLC's deadlock check flags only real hangs).   *)
Finished ==
    /\ wpc = "begin" /\ cursor = Messages
    /\ \A r \in Readers : rpc[r] = "check" /\ pos[r] >= cursor
    /\ UNCHANGED vars

Next ==
    \/ Begin \/ WritePayload \/ Commit \/ Advance \/ DeclareLostRun \/ StampLost
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
NeverDamaged == R!NeverDamaged

(* A sequence declared lost is never delivered, and every one a reader     *)
(* passed is counted in its lost (Accounted counts the rest delivered).    *)
DeclaredNeverDelivered ==
    \A r \in Readers : \A i \in 1 .. Len(got[r]) : got[r][i].seq \notin declared

(* Stamps hold exactly what the protocol says: every slot the complete     *)
(* (or lost, if declared) stamp of the last sequence below the cursor in   *)
(* it (or empty), except the slot being written, whose stamp is odd from   *)
(* Begin to Commit, and, during a lost run, the slots not stamped yet,     *)
(* which still hold the last lap before the run.                           *)
LastBelow(i, c) ==
    IF i < c THEN i + ((c - 1 - i) \div Capacity) * Capacity ELSE -1
StampOf(s) ==
    IF s < 0 THEN Empty ELSE IF s \in declared THEN Lost(s) ELSE Complete(s)
ExpectedStamp(i) ==
    CASE i = Slot /\ wpc \in {"payload", "commit"} -> Writing(cursor)
      [] i = Slot /\ wpc = "advance"               -> Complete(cursor)
      [] wpc = "lose" /\ LastBelow(i, lnext) >= Max(lfirst, lend - Capacity)
                                                   -> Lost(LastBelow(i, lnext))
      [] wpc = "lose"                              -> StampOf(LastBelow(i, lfirst))
      [] OTHER                                     -> StampOf(LastBelow(i, cursor))
StampsAsProtocol == \A i \in Slots : stamp[i] = ExpectedStamp(i)

(* And a slot's stamp never goes backwards (an action property; the LOST   *)
(* flag does not count: a lost sequence is as far along as a complete one).*)
StampsOnlyGrow == [][\A i \in Slots : Base(stamp'[i]) >= Base(stamp[i])]_stamp
=============================================================================
